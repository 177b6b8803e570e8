// Regressions of the hostile-input campaign (issue 18), through the CLI as a user meets them:
// crop boxes past INT_MAX, thread counts that overflow libgomp, file names that are not UTF-8 or
// hold a carriage return, non-finite network outputs, --resume over error rows and cut-off rows,
// folder walks that dropped inputs silently, CSVs with a byte-order mark or conflicting rows,
// CLI11's parse errors, `bench --end-to-end` on missing inputs and negative seeds. Then the
// findings of the fuzz targets (tests/fuzz/; their inputs are in tests/fuzz/corpus/).
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "fervid/safetensors.h"

namespace fervid::test {
namespace {

// A path as a shell word: single-quoted, so that any byte but a single quote passes as it is.
std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

std::string dir_of(const std::string& name) {
  const fs::path d = work_dir() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::string classify(const std::string& inputs) {
  return "classify " + inputs + " --device cpu --weights " + tiny_weights() + " --quiet";
}

std::vector<nlohmann::json> jsonl(const fs::path& p) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(slurp(p));
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

TEST(Crashes, CropBoxesPastIntMaxAreErrorRowsNotOutOfBoundsReads) {
  const std::string v = clip("c10.mp4", 10), d = dir_of("intmax");
  const fs::path rows = fs::path(d) / "rows.jsonl";
  for (const std::string box : {"2147483647,0,1,1", "0,2147483647,1,1", "1,1,2147483647,1"}) {
    Result r = fervid(classify(v) + " --crop box=" + box + " --output " + rows.string());
    EXPECT_EQ(r.code, 1) << box << ": " << r.err;
    const auto got = jsonl(rows);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_NE(got[0]["status"].get<std::string>().find("lies outside the 64x48 frame"),
              std::string::npos)
        << got[0];
  }
  const fs::path boxes = fs::path(d) / "boxes.csv";
  std::ofstream(boxes) << v << ",2147483647,0,1,1\n";
  Result r = fervid(classify(v) + " --crop boxes=" + boxes.string() + " --output " + rows.string());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(jsonl(rows)[0]["status"].get<std::string>().find("lies outside"), std::string::npos);
  // The same box as a card's default crop.
  const fs::path card = fs::path(d) / "card.json";
  std::ofstream(card) << R"({"name":"tiny","config":[8,"M",8,"M"],"input_size":16,"head":"gap",
      "dense":[12],"classes":["neutral","happy","sad"],"crop":"box=2147483647,0,1,1"})";
  r = fervid("classify " + v + " --device cpu --weights " + tiny_weights() + " --spec " +
             card.string() + " --quiet --output " + rows.string());
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(jsonl(rows)[0]["status"].get<std::string>().find("lies outside"), std::string::npos);
}

TEST(Crashes, ThreadCountsOutsideZeroTo1024AreRefused) {
  const std::string v = clip("c10.mp4", 10);
  for (const char* n : {"100000", "1000000000", "-1"})
    expect_fatal(classify(v) + " --threads " + n, "--threads " + std::string(n) + ": expected 0");
  expect_fatal("bench --device cpu --threads 100000 --iters 1", "--threads 100000");
}

TEST(SilentLoss, FileNamesThatAreNotUtf8KeepTheirRowsAndResumeKnowsThem) {
  const std::string d = dir_of("latin1");
  const fs::path odd = fs::path(d) / "caf\xe9\xff.mp4";  // Latin-1 bytes, not UTF-8
  fs::copy_file(clip("c10.mp4", 10), odd);
  const fs::path rows = fs::path(d) / "rows.jsonl", frames = fs::path(d) / "frames.jsonl";
  Result r =
      fervid(classify(quoted(odd)) + " --output " + rows.string() + " --frames " + frames.string());
  ASSERT_EQ(r.code, 0) << r.err;
  auto got = jsonl(rows);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["status"], "ok");
  EXPECT_EQ(got[0]["video"], fs::path(d).string() + "/caf\xef\xbf\xbd\xef\xbf\xbd.mp4");
  std::string hex;
  for (unsigned char c : odd.string())
    hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
  EXPECT_EQ(got[0]["video_path_hex"], hex);
  EXPECT_EQ(jsonl(frames).size(), 10u);
  // --resume finds the video done (by its exact bytes), and eval rows score it.
  r = fervid(classify(quoted(odd)) + " --output " + rows.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(jsonl(rows).size(), 1u);
  Result merged = fervid("merge " + rows.string() + " --output -");
  ASSERT_EQ(merged.code, 0) << merged.err;
  EXPECT_EQ(nlohmann::json::parse(merged.out)["video_path_hex"], hex);
}

TEST(SilentLoss, CsvQuotesCarriageReturnsInNames) {
  const std::string d = dir_of("cr");
  const fs::path odd = fs::path(d) / "cr\rname.mp4";
  fs::copy_file(clip("c10.mp4", 10), odd);
  Result r = fervid(classify(quoted(odd)) + " --output - --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\n\"" + odd.string() + "\","), std::string::npos) << r.out;
}

TEST(SilentLoss, NonFiniteProbabilitiesAreErrorRowsNotLabels) {
  const std::string d = dir_of("nan");
  // Finite numbers that overflow float32 inside the network: inputs of 1e37 * 255.
  const fs::path card = fs::path(d) / "huge.json", w = fs::path(d) / "huge.safetensors";
  std::ofstream(card) << R"({"name":"huge","config":[8,"M",8,"M"],"input_size":16,"head":"gap",
      "dense":[12],"classes":["neutral","happy","sad"],"preprocess":{"scale":1e37}})";
  ASSERT_EQ(fervid("make-weights --seed 1 --spec " + card.string() + " --out " + w.string()).code,
            0);
  const fs::path rows = fs::path(d) / "rows.jsonl";
  Result r = fervid("classify " + clip("c10.mp4", 10) + " --device cpu --quiet --weights " +
                    w.string() + " --output " + rows.string());
  EXPECT_EQ(r.code, 1) << r.err;
  const auto got = jsonl(rows);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0]["label"].is_null()) << got[0];
  EXPECT_NE(got[0]["status"].get<std::string>().find("not a finite number"), std::string::npos);
}

TEST(SilentLoss, ResumeOverErrorRowsExitsOne) {
  const std::string d = dir_of("resume-errors");
  const fs::path missing = fs::path(d) / "missing.mp4", rows = fs::path(d) / "rows.jsonl";
  const std::string inputs = clip("c10.mp4", 10) + " " + missing.string();
  ASSERT_EQ(fervid(classify(inputs) + " --output " + rows.string()).code, 1);
  // Nothing left to do, but the output holds an error row: exit 1, as the first run.
  Result r = fervid(classify(inputs) + " --output " + rows.string() + " --resume");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(jsonl(rows).size(), 2u);
}

TEST(SilentLoss, ResumeAppendsAfterTheRowsOnDiskAndDropsACutOffRow) {
  const std::string d = dir_of("resume-append");
  const std::string a = clip("c10.mp4", 10), b = clip("c7.mp4", 7);
  const fs::path full = fs::path(d) / "full.jsonl", rows = fs::path(d) / "rows.jsonl";
  ASSERT_EQ(fervid(classify(a + " " + b) + " --output " + full.string()).code, 0);
  // An interrupted run: the first row and half of the second, no newline after it.
  const std::string text = slurp(full);
  const size_t first = text.find('\n') + 1;
  std::ofstream(rows.string() + ".part") << text.substr(0, first) << text.substr(first, 40);
  Result r = fervid(classify(a + " " + b) + " --output " + rows.string() + " --resume", "");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(rows), text);  // the first row kept where it was, the cut one redone
  EXPECT_FALSE(fs::exists(rows.string() + ".part"));
}

TEST(SilentLoss, FolderWalksSayWhatTheySkipAndRowEveryMediaFile) {
  const std::string d = dir_of("walk");
  fs::create_directories(fs::path(d) / "sub");
  sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=32x24:rate=5 -frames:v 3 " + d +
     "/sub/anim.gif");
  sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=duration=0.2 " + d + "/sub/voice.m4a");
  fs::create_symlink(fs::path(d) / "gone.mp4", fs::path(d) / "sub" / "dangling.mp4");
  std::ofstream(fs::path(d) / "sub" / "notes.txt") << "not a video";
  Result r = fervid("classify " + d + " --device cpu --weights " + tiny_weights() +
                    " --output - --format csv");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("skipped 1 files that are no video, audio or image"), std::string::npos)
      << r.err;
  EXPECT_EQ(lines(r.out), 4) << r.out;  // header + gif + m4a + dangling link
  EXPECT_NE(r.out.find("anim.gif,3,3,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("voice.m4a,0,0,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error: no video stream"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error: a dangling symbolic link"), std::string::npos) << r.out;
}

TEST(Checks, CsvsWithAByteOrderMarkAndConflictingLabels) {
  const std::string d = dir_of("bom");
  const std::string v = clip("c10.mp4", 10);
  const fs::path labels = fs::path(d) / "labels.csv", boxes = fs::path(d) / "boxes.csv";
  std::ofstream(labels) << "\xEF\xBB\xBFpath,label\r\n" << v << ",happy\r\n";
  std::ofstream(boxes) << "\xEF\xBB\xBFpath,x,y,w,h\r\n" << v << ",0,0,32,32\r\n";
  Result r =
      fervid("eval " + v + " --device cpu --weights " + tiny_weights() + " --quiet --labels " +
             labels.string() + " --crop boxes=" + boxes.string() + " --output - --format jsonl");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto row = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(row["truth"], "happy");
  EXPECT_EQ(row["crop"], (nlohmann::json{0, 0, 32, 32}));
  std::ofstream(labels) << "path,label\n" << v << ",happy\n" << v << ",sad\n";
  expect_fatal(
      "eval " + v + " --device cpu --weights " + tiny_weights() + " --labels " + labels.string(),
      "is labelled sad here and happy on line 2");
}

TEST(Checks, ParseErrorsAreOneLineWithFervidsPrefix) {
  for (const std::string args : {"classify", "classify x --no-such-flag", "no-such-command", ""}) {
    Result r = fervid(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_EQ(lines(r.err), 1) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("fervid: error: ", 0), 0u) << args << ": " << r.err;
  }
  Result help = fervid("classify --help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--weights"), std::string::npos);
}

TEST(Checks, NegativeSeedsAndBenchOnMissingInputsAreErrors) {
  expect_fatal("make-weights --seed -1 --out " + (work_dir() / "s.safetensors").string(),
               "--seed: '-1': expected a whole number 0 or more");
  expect_fatal("bench --end-to-end /nonexistent.mp4 --device cpu",
               "/nonexistent.mp4: no such file or directory");
  const fs::path junk = work_dir() / "bench-junk.mp4";
  std::ofstream(junk) << "this is not a video\n";
  expect_fatal("bench --end-to-end " + junk.string() + " --device cpu",
               "no frame could be decoded");
}

// Found by the fuzz targets: messages that quote an option, a label, a tensor name or a decoder's
// reason with a carriage return or newline in it broke into two lines.
TEST(Fuzzed, ErrorsQuotingControlCharactersStayOneLine) {
  const std::string d = dir_of("fuzzed");
  const std::string v = clip("c10.mp4", 10);
  expect_fatal("classify " + v + " --weights " + tiny_weights() +
                   " --device \"$(printf 'cpu\\r\\n\\001x')\"",
               "--device cpu\\r\\n\\x01x: expected auto, cpu or cuda");

  const fs::path labels = fs::path(d) / "labels.csv";
  std::ofstream(labels) << "path,label\n" << v << ",hap\rpy\n";
  expect_fatal(
      "eval " + v + " --device cpu --weights " + tiny_weights() + " --labels " + labels.string(),
      "'hap\\rpy' (line 2)");

  // A weights file with one tensor more than the spec, named with a newline.
  const std::string weights = (fs::path(d) / "extra.safetensors").string();
  {
    const SafetensorsFile tiny = SafetensorsFile::open(tiny_weights());
    std::vector<StTensorOut> out;
    for (const StTensorInfo& t : tiny.tensors()) {
      const auto bytes = tiny.bytes(t);
      out.push_back({t.name, t.dtype, t.shape, {bytes.begin(), bytes.end()}});
    }
    out.push_back({"extra\nname", StDType::F32, {1}, std::vector<std::byte>(4)});
    write_safetensors(weights, out, tiny.metadata());
  }
  expect_fatal("classify " + v + " --device cpu --weights " + weights,
               "tensor 'extra\\nname' is not part of the spec");

  // A PNG whose unknown chunk's name holds a newline: stb_image quotes it in its reason.
  const fs::path png = fs::path(d) / "chunk.png";
  fs::copy_file(fs::path(FERVID_SOURCE_DIR) / "tests/fuzz/corpus/image/png-chunk-name-with-newline",
                png, fs::copy_options::overwrite_existing);
  Result r = fervid(classify(png.string()) + " --format csv --output -");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(lines(r.out), 2) << r.out;  // the header and the image's error row
  EXPECT_NE(r.out.find("cannot decode image"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("cannot decode image: \\n\\x1a\\n\n"), std::string::npos) << r.err;
}

TEST(Fuzzed, MergeErrorsNameTheFilesTheyRead) {
  const std::string d = dir_of("fuzzed-merge");
  const std::string v = clip("c10.mp4", 10);
  const fs::path shard = fs::path(d) / "s1.jsonl", rows = fs::path(d) / "rows.jsonl";
  Result r = fervid(classify(v) + " --shard 1/2 --format jsonl --output " + shard.string());
  ASSERT_EQ(r.code, 0) << r.err;
  expect_fatal("merge " + shard.string() + " --output " + (fs::path(d) / "m.jsonl").string(),
               "shard 2/2 is missing from " + shard.string());
  const fs::path bad = fs::path(d) / "bad-shard.jsonl";
  std::string row = slurp(shard);
  row.replace(row.find("\"1/2\""), 5, "\"1/x\"");
  std::ofstream(bad) << row;
  expect_fatal("merge " + bad.string() + " --output " + (fs::path(d) / "m.jsonl").string(),
               bad.string() +
                   ":1: not a row of fervid's JSON Lines output (--format jsonl): shard "
                   "is not K/N");
  r = fervid(classify(v) + " --format jsonl --output " + rows.string());
  ASSERT_EQ(r.code, 0) << r.err;
  expect_fatal("merge " + rows.string() + " --output " + (fs::path(d) / "m.jsonl").string() +
                   " --summary " + (fs::path(d) / "s.json").string(),
               "the rows of " + rows.string() + " carry no truth");
}

}  // namespace
}  // namespace fervid::test
