// Where the CLI writes, and what: outputs never destroy what is at their path (a symlink is
// written through, "-", pipes and devices are streamed to, a folder, a missing folder, two outputs
// naming one file and an output naming an input are refused before any work); the format follows
// the file's name; rows carry the source's frame rate, duration and frames decoded, per frame the
// time, the crop and (eval) the truth; --help and the README offer the same choices.
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "cli_util.h"

namespace fervid::test {
namespace {

std::string out_dir(const std::string& name) {
  const fs::path d = work_dir() / name;
  fs::create_directories(d);
  return d.string();
}

std::string run_args(const std::string& input) {
  return "classify " + input + " --device cpu --weights " + tiny_weights() + " --quiet";
}

TEST(Outputs, ASymlinkIsWrittenThroughAndStaysALink) {
  const std::string d = out_dir("link"), v = clip("c10.mp4", 10);
  const fs::path real = fs::path(d) / "real.csv", link = fs::path(d) / "link.csv";
  std::ofstream(real) << "old\n";
  fs::create_symlink("real.csv", link);
  Result r = fervid(run_args(v) + " --output " + link.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(slurp(real).rfind("video,frames,", 0), 0u) << slurp(real);
  EXPECT_FALSE(fs::exists(fs::path(d) / "link.csv.part"));
  EXPECT_FALSE(fs::exists(fs::path(d) / "real.csv.part"));
  // A dangling link: its target is created, the link kept.
  const fs::path dangling = fs::path(d) / "dangling.jsonl";
  fs::create_symlink("made.jsonl", dangling);
  ASSERT_EQ(fervid(run_args(v) + " --output " + dangling.string()).code, 0);
  EXPECT_TRUE(fs::is_symlink(dangling));
  EXPECT_TRUE(nlohmann::json::parse(slurp(fs::path(d) / "made.jsonl")).contains("video"));
}

TEST(Outputs, StandardOutputPipesAndDevicesAreStreamedTo) {
  const std::string d = out_dir("streams"), v = clip("c10.mp4", 10);
  Result dash = fervid(run_args(v) + " --output - --format csv");
  ASSERT_EQ(dash.code, 0) << dash.err;
  EXPECT_EQ(dash.out.rfind("video,frames,", 0), 0u) << dash.out;
  EXPECT_FALSE(fs::exists("-"));
  Result dev = fervid(run_args(v) + " --output /dev/stdout --format jsonl");
  ASSERT_EQ(dev.code, 0) << dev.err;
  EXPECT_TRUE(nlohmann::json::parse(dev.out).contains("video")) << dev.out;
  struct stat st {};
  ASSERT_EQ(lstat("/dev/null", &st), 0);
  ASSERT_EQ(fervid(run_args(v) + " --output /dev/null --format csv").code, 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && lstat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
  // A named pipe, read by another process as the rows come.
  const fs::path fifo = fs::path(d) / "rows.fifo", copy = fs::path(d) / "copy.csv";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::thread reader([&] { sh("cat " + fifo.string() + " > " + copy.string()); });
  Result piped = fervid(run_args(v) + " --output " + fifo.string() + " --format csv");
  reader.join();
  ASSERT_EQ(piped.code, 0) << piped.err;
  EXPECT_EQ(lines(slurp(copy)), 2) << slurp(copy);
  // eval --summary - writes the JSON to stdout and the metrics text to stderr; rows on stdout
  // too would mix with it: refused.
  const std::string named = (fs::path(d) / "02-01-03-01-01-01-01.mp4").string();
  fs::copy_file(v, named, fs::copy_options::overwrite_existing);
  const std::string eval = "eval " + named + " --device cpu --weights " + tiny_weights();
  Result summary = fervid(eval + " --summary -");
  ASSERT_EQ(summary.code, 0) << summary.err;
  EXPECT_EQ(nlohmann::json::parse(summary.out)["videos"], 1);
  EXPECT_NE(summary.err.find("video accuracy:"), std::string::npos) << summary.err;
  expect_fatal(eval + " --format csv --summary -", "name the same file");
  // eval --format without --output: the rows on stdout, the metrics on stderr.
  Result rows = fervid(eval + " --format jsonl");
  ASSERT_EQ(rows.code, 0) << rows.err;
  EXPECT_EQ(nlohmann::json::parse(rows.out)["truth"], "happy");
  EXPECT_NE(rows.err.find("video accuracy:"), std::string::npos) << rows.err;
}

TEST(Outputs, BadPathsAreRefusedBeforeAnyWork) {
  const std::string d = out_dir("refused"), v = clip("c10.mp4", 10);
  const std::string victim = (fs::path(d) / "victim.mp4").string();
  fs::copy_file(v, victim, fs::copy_options::overwrite_existing);
  const std::string before = slurp(victim);
  expect_fatal(run_args(victim) + " --output " + victim + " --format csv",
               "--output " + victim + ": that is one of the inputs");
  EXPECT_EQ(slurp(victim), before);
  expect_fatal(run_args(v) + " --output " + d, "--output " + d + ": a folder, not a file");
  expect_fatal(run_args(v) + " --output " + d + "/missing/rows.csv",
               "the folder " + d + "/missing does not exist");
  const std::string same = (fs::path(d) / "f.csv").string();
  std::ofstream(same) << "keep me\n";
  expect_fatal(run_args(v) + " --output " + same + " --frames " + same,
               "--output " + same + " and --frames " + same + " name the same file");
  EXPECT_EQ(slurp(same), "keep me\n");
  expect_fatal(run_args(v) + " --output " + d + "/x.csv --frames " + d + "/../refused/x.csv",
               "name the same file");
  expect_fatal(run_args(v) + " --output " + tiny_weights() + " --format csv",
               "that is one of the inputs");
  expect_fatal("make-weights --seed 1 --out " + d, "--out " + d + ": a folder, not a file");
  // An unfinished run (a fatal error in the middle is hard to make; a refused option is not) leaves
  // an existing file as it was.
  expect_fatal(run_args(v) + " --output " + same + " --stride 0", "--stride 0: must be at least 1");
  EXPECT_EQ(slurp(same), "keep me\n");
}

TEST(Outputs, TheFormatFollowsTheName) {
  const std::string d = out_dir("formats"), v = clip("c10.mp4", 10);
  ASSERT_EQ(fervid(run_args(v) + " --output " + d + "/r.jsonl").code, 0);
  EXPECT_TRUE(nlohmann::json::parse(slurp(d + "/r.jsonl")).contains("video"));
  ASSERT_EQ(fervid(run_args(v) + " --output " + d + "/r.ndjson").code, 0);
  EXPECT_TRUE(nlohmann::json::parse(slurp(d + "/r.ndjson")).contains("video"));
  ASSERT_EQ(fervid(run_args(v) + " --output " + d + "/r.csv").code, 0);
  EXPECT_EQ(slurp(d + "/r.csv").rfind("video,frames,", 0), 0u);
  expect_fatal(run_args(v) + " --output " + d + "/r.jsonl --format csv",
               "its name says jsonl, --format says csv");
  expect_fatal(run_args(v) + " --output " + d + "/r.txt",
               "name it .csv or .jsonl (or give --format csv|jsonl)");
  expect_fatal(run_args(v) + " --output " + d + "/r.txt --format table",
               "the table is for terminals");
  ASSERT_EQ(fervid(run_args(v) + " --output " + d + "/r.txt --format csv").code, 0);
  // --frames by its name.
  ASSERT_EQ(fervid(run_args(v) + " --output " + d + "/v.csv --frames " + d + "/f.jsonl").code, 0);
  const auto first =
      nlohmann::json::parse(slurp(d + "/f.jsonl").substr(0, slurp(d + "/f.jsonl").find('\n')));
  EXPECT_EQ(first["frame"], 0);
  EXPECT_TRUE(first.contains("time_s") && first.contains("crop") && first.contains("probs"));
  // The table in a pipe keeps whole paths: only a terminal gets them shortened.
  const std::string deep = out_dir("a/very/deep/folder/whose/path/is/long/enough/to/be/cut");
  const std::string long_clip = (fs::path(deep) / "clip-with-a-long-name.mp4").string();
  fs::copy_file(v, long_clip, fs::copy_options::overwrite_existing);
  Result table = fervid(run_args(long_clip));
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find(long_clip), std::string::npos) << table.out;
}

TEST(Outputs, RowsCarryTheSourceAndEachFramesTimeAndCrop) {
  const std::string d = out_dir("rows");
  const std::string v = clip("c10.mp4", 10);  // 10 frames at 10 fps, 64x48
  ASSERT_EQ(fervid(run_args(v) + " --stride 2 --crop center --output " + d + "/v.jsonl --frames " +
                   d + "/f.csv")
                .code,
            0);
  const auto row = nlohmann::json::parse(slurp(d + "/v.jsonl"));
  EXPECT_EQ(row["frames"], 5);
  EXPECT_EQ(row["frames_decoded"], 10);
  EXPECT_DOUBLE_EQ(row["fps"].get<double>(), 10.0);
  EXPECT_NEAR(row["duration_s"].get<double>(), 1.0, 1e-6);
  std::istringstream frames(slurp(d + "/f.csv"));
  std::string line;
  std::getline(frames, line);
  EXPECT_EQ(line.rfind("video,frame,time_s,crop_x,crop_y,crop_w,crop_h,label,", 0), 0u) << line;
  std::getline(frames, line);
  std::getline(frames, line);  // the second kept frame: frame 2 at 0.2 s, the centre square
  EXPECT_EQ(line.rfind(v + ",2,0.200000,8,0,48,48,", 0), 0u) << line;
}

TEST(Messages, HelpAndReadmeOfferTheSameChoices) {
  const std::string readme = slurp(fs::path(FERVID_SOURCE_DIR) / "README.md");
  const std::string help = fervid("classify --help").out + fervid("eval --help").out;
  // In the README's synopsis: [--flag a|b|c]; in --help: --flag ... a | b | c.
  for (const char* flag :
       {"--device", "--precision", "--conv-impl", "--cuda-graphs", "--stage-streams", "--crop",
        "--vote", "--format", "--decoder", "--modality", "--channel"}) {
    SCOPED_TRACE(flag);
    std::smatch m;
    ASSERT_TRUE(
        std::regex_search(readme, m, std::regex(std::string("\\[") + flag + " ([^\\] ]+)\\]")))
        << "not in the README's synopsis";
    std::set<std::string> want;
    std::stringstream choices(m[1].str());
    for (std::string c; std::getline(choices, c, '|');) want.insert(c);
    const size_t at = help.find(std::string(flag) + " ");
    ASSERT_NE(at, std::string::npos);
    const std::string described = help.substr(at, help.find("\n  -", at) - at);
    for (const std::string& c : want)
      EXPECT_NE(described.find(c), std::string::npos) << c << " is not in: " << described;
  }
}

TEST(Messages, ABadChoiceNamesTheValidOnesAndUntrainedWeightsAreSaid) {
  const std::string v = clip("c10.mp4", 10);
  expect_fatal("eval " + v + " --weights " + tiny_weights() + " --emotions joy",
               "'joy' is not a RAVDESS emotion (neutral, calm, happy, sad, angry, fearful, "
               "disgust, surprised, or their codes 1-8)");
  Result r = fervid(run_args(v));
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.err.find("holds untrained weights (fervid make-weights)"), std::string::npos)
      << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;  // --quiet: that warning only
}

// A command refuses an option it does not implement: explain writes its files in --out, so the
// rows' options of classify are not among its own (before, it took them and did nothing).
TEST(Messages, ExplainRefusesTheRowsOptions) {
  const std::string v = clip("c10.mp4", 10);
  const std::string base =
      "explain " + v + " --weights " + tiny_weights() + " --out " + (work_dir() / "ex").string();
  for (const char* opt : {"--output x.csv", "--frames f.csv", "--shard 1/2", "--resume",
                          "--format csv", "--logits"}) {
    SCOPED_TRACE(opt);
    const std::string flag = std::string(opt).substr(0, std::string(opt).find(' '));
    expect_fatal(base + " " + opt, flag);
    EXPECT_NE(fervid(base + " " + opt).err.find("not expected"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(work_dir() / "ex"));
}

}  // namespace
}  // namespace fervid::test
