// The fervid CLI end to end: exit codes, one-line errors naming the input, result files written
// completely or not at all, the output formats, make-weights and inspect.
#include <stb_image.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_util.h"
#include "metrics.h"

namespace fs = std::filesystem;

namespace fervid::test {
namespace {

TEST(Cli, HelpAndVersion) {
  Result r = fervid("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("classify"), std::string::npos);
  for (const char* cmd : {"classify", "make-weights", "inspect", "bench", "calibrate"}) {
    Result h = fervid(std::string(cmd) + " --help");
    EXPECT_EQ(h.code, 0) << cmd;
    EXPECT_NE(h.out.find("--"), std::string::npos) << cmd;
  }
  Result v = fervid("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out.rfind("fervid ", 0), 0u) << v.out;
  EXPECT_EQ(fervid("").code, 2);
  EXPECT_EQ(fervid("classify x.mp4").code, 2);  // --weights is required
}

TEST(Cli, BadWeightsFailWithOneLine) {
  const std::string v = clip("c10.mp4", 10);
  const std::string missing = (work_dir() / "nope.safetensors").string();
  expect_fatal("classify " + v + " --weights " + missing, missing + ": cannot open");
  fs::path text = work_dir() / "text.safetensors";
  std::ofstream(text) << "this is not a weights file at all";
  expect_fatal("classify " + v + " --weights " + text.string(), "not a valid safetensors file");
  fs::path cut = work_dir() / "cut.safetensors";
  {
    std::string all = slurp(tiny_weights());
    std::ofstream(cut, std::ios::binary) << all.substr(0, all.size() - 100);
  }
  expect_fatal("classify " + v + " --weights " + cut.string(), "truncated");
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --spec ravdess-vgg16",
               "does not match built-in card ravdess-vgg16");
  // A failed run leaves no output file behind.
  const fs::path out = work_dir() / "never.csv";
  fervid("classify " + v + " --weights " + missing + " --output " + out.string());
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".part"));
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --logits", "--frames");
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --crop diagonal",
               "--crop diagonal");
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --device tpu", "--device tpu");
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --cuda-graphs maybe",
               "--cuda-graphs maybe: expected on or off");
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --stage-streams 2",
               "--stage-streams 2: expected on or off");
}

TEST(Cli, NoGpuMeansCudaFailsAndAutoFallsBack) {
  const std::string v = clip("c10.mp4", 10);
  Result probe = fervid("classify " + v + " --weights " + tiny_weights() + " --device auto");
  ASSERT_EQ(probe.code, 0) << probe.err;
  if (probe.err.find("using the CPU backend") == std::string::npos)
    GTEST_SKIP() << "a CUDA backend is usable here";
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --device cuda",
               "--device cuda:");
  // --decoder auto decodes on the CPU without GPU words (the backend notice said why); nvdec
  // fails with one line; --device cpu says nothing of GPUs; --quiet silences every notice.
  EXPECT_EQ(probe.err.find("decoding video"), std::string::npos) << probe.err;
  Result quiet =
      fervid("classify " + v + " --weights " + tiny_weights() + " --device auto --quiet");
  EXPECT_EQ(quiet.err.find("notice"), std::string::npos) << quiet.err;
  Result cpu_run = fervid("classify " + v + " --weights " + tiny_weights() + " --device cpu");
  for (const char* gpu_word : {"GPU", "CUDA", "NVDEC", "notice"})
    EXPECT_EQ(cpu_run.err.find(gpu_word), std::string::npos) << cpu_run.err;
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --device cpu --decoder nvdec",
               "--decoder nvdec: the backend runs on the CPU");
  Result cpu = fervid("classify " + v + " --weights " + tiny_weights() +
                      " --device cpu --decoder cpu --decode-threads 2 --cuda-graphs off" +
                      " --stage-streams off");
  ASSERT_EQ(cpu.code, 0) << cpu.err;
  EXPECT_EQ(cpu.err.find("notice"), std::string::npos) << cpu.err;
  EXPECT_EQ(cpu.out, probe.out);
}

TEST(Cli, ClassifiesAndReportsBadVideosInTheirRows) {
  SeedTrace trace;
  const std::string good = clip("c10.mp4", 10), other = clip("c7.mp4", 7);
  // Junk that no FFmpeg demuxer takes for its format (random bytes sometimes were: "no video
  // stream" instead of "cannot open video", FERVID_SEED=4036998248).
  fs::path junk = work_dir() / "junk.mp4";
  {
    std::ofstream out(junk, std::ios::binary);
    for (int i = 0; i < 100; ++i) out << "this is not a video, just text\n";
  }
  fs::create_directories(work_dir() / "emptydir");
  fs::path zero = work_dir() / "zero.mp4";
  std::system(
      ("ffmpeg -nostdin -v quiet -y -f lavfi -i testsrc=size=64x48 -frames:v 0 " + zero.string())
          .c_str());
  const fs::path out = work_dir() / "rows.csv", frames = work_dir() / "frames.csv";
  std::string args = "classify " + good + " " + junk.string() + " " + other + " " +
                     (work_dir() / "emptydir").string() + " --weights " + tiny_weights() +
                     " --batch 4 --format csv --output " + out.string() + " --frames " +
                     frames.string() + " --logits --quiet";
  if (fs::exists(zero)) args += " " + zero.string();
  Result r = fervid(args);
  EXPECT_EQ(r.code, 1) << r.err;
  ASSERT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".part"));
  std::string csv = slurp(out);
  const int expected_rows = fs::exists(zero) ? 5 : 4;
  EXPECT_EQ(lines(csv), 1 + expected_rows) << csv;
  EXPECT_EQ(csv.rfind("video,frames,frames_decoded,fps,duration_s,label,vote,count_neutral,"
                      "count_happy,count_sad,p_neutral",
                      0),
            0u);
  std::istringstream rows(csv);
  std::string line;
  std::getline(rows, line);
  std::getline(rows, line);
  EXPECT_EQ(line.rfind(good + ",10,", 0), 0u) << line;
  EXPECT_NE(line.find(",majority,"), std::string::npos) << line;
  EXPECT_NE(line.find(",ok"), std::string::npos) << line;
  std::getline(rows, line);
  EXPECT_EQ(line.rfind(junk.string() + ",0,0,", 0), 0u) << line;
  EXPECT_NE(line.find("error: cannot open video"), std::string::npos) << line;
  std::getline(rows, line);
  EXPECT_NE(line.find(",ok"), std::string::npos) << line;
  std::getline(rows, line);
  EXPECT_NE(line.find("error: directory holds no images or videos"), std::string::npos) << line;
  if (fs::exists(zero)) {
    std::getline(rows, line);
    EXPECT_NE(line.find("error:"), std::string::npos) << line;
  }
  // stderr names each bad input on its own line
  EXPECT_NE(r.err.find(junk.string() + ": cannot open video"), std::string::npos) << r.err;
  std::string fcsv = slurp(frames);
  EXPECT_EQ(lines(fcsv), 1 + 17);
  EXPECT_EQ(
      fcsv.rfind("video,frame,time_s,crop_x,crop_y,crop_w,crop_h,label,p_neutral,p_happy,p_sad,"
                 "logit_neutral,logit_happy,logit_sad\n",
                 0),
      0u);
}

TEST(Cli, TableAndJsonLines) {
  const std::string v = clip("c10.mp4", 10);
  Result t =
      fervid("classify " + v + " --weights " + tiny_weights() + " --stride 2 --vote confidence");
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(lines(t.out), 2) << t.out;
  EXPECT_NE(t.out.find("video"), std::string::npos);
  EXPECT_NE(t.out.find(" ok"), std::string::npos) << t.out;
  EXPECT_NE(t.err.find("1 videos (0 failed), 5 frames"), std::string::npos) << t.err;
  Result j = fervid("classify " + v + " " + v + " --weights " + tiny_weights() +
                    " --format jsonl --max-frames 3 --quiet");
  ASSERT_EQ(j.code, 0) << j.err;
  std::istringstream in(j.out);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto row = nlohmann::json::parse(line);
    EXPECT_EQ(row["frames"], 3);
    EXPECT_EQ(row["status"], "ok");
    EXPECT_EQ(row["vote"], "majority");
    int total = 0;
    double psum = 0;
    for (auto& [k, c] : row["counts"].items()) total += c.get<int>();
    for (auto& [k, p] : row["mean_probs"].items()) psum += p.get<double>();
    EXPECT_EQ(total, 3);
    EXPECT_NEAR(psum, 1.0, 1e-5);
    ++n;
  }
  EXPECT_EQ(n, 2);
}

TEST(Cli, MakeWeightsAndInspect) {
  const std::string w = (work_dir() / "tv.safetensors").string();
  Result m = fervid("make-weights --seed 1 --spec torchvision-vgg16 --dtype bf16 --out " + w);
  ASSERT_EQ(m.code, 0) << m.err;
  Result i = fervid("inspect " + w);
  EXPECT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("head flatten"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("untrained: true"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("classifier.0.weight"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("BF16"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("parameters in file: 134293320"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("matches spec: yes"), std::string::npos) << i.out;
  Result mismatch = fervid("inspect " + w + " --spec ravdess-vgg16");
  EXPECT_EQ(mismatch.code, 1);
  EXPECT_NE(mismatch.out.find("matches spec: no"), std::string::npos) << mismatch.out;
  EXPECT_EQ(fervid("make-weights --seed 1 --dtype f8 --out " + w).code, 2);
}

// fervid calibrate writes a copy of the weights whose card carries the int8 scales (the tensors
// byte for byte), an unreadable input is skipped and said (exit 1); --precision int8 then runs,
// close to fp32, and weights without scales are refused in one line.
TEST(Cli, CalibrateThenClassifyInInt8) {
  const fs::path card = work_dir() / "small16.json";
  std::ofstream(card) << R"({"name":"small16","config":[16,16,"M",32,"M"],"input_size":32,
    "head":"gap","dense":[12],"classes":["a","b","c"],"preprocess":"study"})";
  const std::string w = (work_dir() / "small16.safetensors").string();
  const std::string w8 = (work_dir() / "small16-int8.safetensors").string();
  ASSERT_EQ(fervid("make-weights --seed 3 --spec " + card.string() + " --out " + w).code, 0);
  const std::string v = clip("cal12.mp4", 12);
  const std::string missing = (work_dir() / "missing.mp4").string();
  Result c =
      fervid("calibrate " + missing + " " + v + " --weights " + w + " --out " + w8 + " --frames 8");
  EXPECT_EQ(c.code, 1) << c.err;
  EXPECT_NE(c.err.find(missing), std::string::npos) << c.err;
  EXPECT_NE(c.out.find("int8 input scales of 3 conv layers from 8 frames"), std::string::npos)
      << c.out;
  Result i = fervid("inspect " + w8);
  EXPECT_NE(i.out.find("int8: input scales of 3 conv layers, from 8 frames"), std::string::npos)
      << i.out;
  EXPECT_NE(i.out.find("matches spec: yes"), std::string::npos) << i.out;
  // The tensors are the original's bytes: the same fp32 rows from both files.
  const fs::path a = work_dir() / "cal-fp32-a.csv", b = work_dir() / "cal-fp32-b.csv";
  ASSERT_EQ(fervid("classify " + v + " --device cpu --quiet --frames " + a.string() +
                   " --output /dev/null --weights " + w)
                .code,
            0);
  ASSERT_EQ(fervid("classify " + v + " --device cpu --quiet --frames " + b.string() +
                   " --output /dev/null --weights " + w8)
                .code,
            0);
  EXPECT_EQ(slurp(a), slurp(b));
  expect_fatal("calibrate " + v + " --weights " + w + " --out " + w, "--out");
  expect_fatal("calibrate " + v + " --weights " + w + " --out " + w8 + " --frames 0", "--frames");
  const fs::path q = work_dir() / "cal-int8.csv";
  Result r = fervid("classify " + v + " --device cpu --precision int8 --quiet --frames " +
                    q.string() + " --output /dev/null --weights " + w8);
  if (r.code == 2 && r.err.find("int8 on the CPU:") != std::string::npos)
    GTEST_SKIP() << r.err;  // no VNNI here: the refusal is the one line checked
  ASSERT_EQ(r.code, 0) << r.err;
  // Each frame's probabilities within 0.05 of fp32's (an untrained network's int8 error).
  const auto probs = [](const fs::path& p) {
    std::vector<double> out;
    std::istringstream in(slurp(p));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::stringstream cells(line);
      std::vector<std::string> cell;
      for (std::string x; std::getline(cells, x, ',');) cell.push_back(x);
      for (size_t k = cell.size() - 3; k < cell.size(); ++k) out.push_back(std::stod(cell[k]));
    }
    return out;
  };
  const std::vector<double> p32 = probs(a), p8 = probs(q);
  ASSERT_EQ(p32.size(), p8.size());
  ASSERT_EQ(p32.size(), 12u * 3);
  for (size_t k = 0; k < p32.size(); ++k) EXPECT_NEAR(p8[k], p32[k], 0.05) << k;
  expect_fatal("classify " + v + " --device cpu --precision int8 --weights " + w,
               "fervid calibrate");
}

// ---- fervid eval, merge, --shard, --resume ----

// A tiny model with RAVDESS's eight classes (16x16 input: runs take milliseconds).
const std::string& tiny8_weights() {
  static std::string w = [] {
    fs::path card = work_dir() / "tiny8.json";
    std::ofstream(card) << R"({"name":"tiny8","config":[8,"M",8,"M"],"input_size":16,"head":"gap",
      "dense":[12],"classes":["neutral","calm","happy","sad","angry","fearful","disgust",
      "surprised"],"preprocess":"study","vote":"confidence"})";
    std::string out = (work_dir() / "tiny8.safetensors").string();
    Result r = fervid("make-weights --seed 5 --spec " + card.string() + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    return out;
  }();
  return w;
}

// The real videos of ../shared/data under RAVDESS names (symbolic links), one corrupt clip and
// one audio-only file (skipped by eval).
fs::path ravdess_dir() {
  static const fs::path dir = [] {
    const fs::path d = work_dir() / "ravdess";
    const std::string data = FERVID_DATA_DIR;
    const std::pair<const char*, const char*> clips[] = {
        {"/video/astronaut-720p.mp4", "Actor_01/02-01-03-01-01-01-01.mp4"},
        {"/ravdess/modified/01-01-07-02-02-01-01_1.mp4", "Actor_01/01-01-07-02-02-01-01_1.mp4"},
        {"/video/vtest.avi", "Actor_02/02-01-05-01-01-01-02.avi"},
        {"/video/astronaut-720p.mp4", "Actor_02/01-01-01-01-02-01-02.mp4"},
        {"/ravdess/modified/01-01-08-02-01-01-19.mp4", "Actor_19/01-01-08-02-01-01-19.mp4"},
        {"/video/vtest.avi", "Actor_21/02-01-04-01-01-02-21.avi"},
        {"/video/astronaut-720p.mp4", "Actor_22/02-01-06-02-01-01-22.mp4"}};
    for (auto [src, name] : clips) {
      fs::create_directories((d / name).parent_path());
      fs::create_symlink(data + src, d / name);
    }
    fs::create_directories(d / "Actor_03");
    std::ofstream(d / "Actor_03/02-01-02-01-01-01-03.mp4") << "not a video";
    std::ofstream(d / "Actor_03/03-01-02-01-01-01-03.wav") << "audio only";
    return d;
  }();
  return dir;
}

std::vector<nlohmann::json> jsonl_rows(const fs::path& p) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(slurp(p));
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

TEST(Eval, ScoresARavdessDatasetConsistentlyWithItsRows) {
  FERVID_NEED_RAVDESS();
  const fs::path out = work_dir() / "eval.jsonl", summary = work_dir() / "eval.json",
                 png = work_dir() / "eval.png";
  Result r = fervid("eval " + ravdess_dir().string() + " --device cpu --weights " +
                    tiny8_weights() + " --max-frames 6 --format jsonl --output " + out.string() +
                    " --summary " + summary.string() + " --confusion " + png.string());
  EXPECT_EQ(r.code, 1) << r.err;  // the corrupt clip
  EXPECT_NE(r.out.find("frame accuracy:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("video accuracy:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("confusion matrix"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("02-01-02-01-01-01-03.mp4: cannot open video"), std::string::npos) << r.err;
  const auto rows = jsonl_rows(out);
  ASSERT_EQ(rows.size(), 8u);
  int ok = 0, correct = 0;
  int64_t frames = 0, frames_correct = 0;
  for (const auto& row : rows) {
    EXPECT_EQ(row["video"].get<std::string>().find(".wav"), std::string::npos);
    EXPECT_TRUE(row["truth"].is_string()) << row;
    if (row["status"] != "ok") continue;
    ++ok;
    correct += row["label"] == row["truth"];
    frames += row["frames"].get<int64_t>();
    frames_correct += row["counts"][row["truth"].get<std::string>()].get<int64_t>();
    int64_t sum = 0;
    for (auto& [k, c] : row["counts"].items()) sum += c.get<int64_t>();
    EXPECT_EQ(sum, row["frames"].get<int64_t>());
  }
  EXPECT_EQ(ok, 7);
  const auto s = nlohmann::json::parse(slurp(summary));
  EXPECT_EQ(s["videos"], ok);
  EXPECT_EQ(s["videos_failed"], 1);
  EXPECT_EQ(s["frames"], frames);
  EXPECT_DOUBLE_EQ(s["video_accuracy"].get<double>(), double(correct) / ok);
  EXPECT_DOUBLE_EQ(s["frame_accuracy"].get<double>(), double(frames_correct) / double(frames));
  int64_t videos_in_matrix = 0, frames_in_matrix = 0;
  for (const auto& row : s["confusion"])
    for (const auto& v : row) videos_in_matrix += v.get<int64_t>();
  for (const auto& row : s["frame_confusion"])
    for (const auto& v : row) frames_in_matrix += v.get<int64_t>();
  EXPECT_EQ(videos_in_matrix, ok);
  EXPECT_EQ(frames_in_matrix, frames);
  EXPECT_EQ(s["per_actor"].size(), 5u);  // actors 1, 2, 19, 21, 22 (actor 3's clip failed)
  const std::vector<std::string> classes = s["classes"];
  int w = 0, h = 0, ch = 0;
  unsigned char* px = stbi_load(png.string().c_str(), &w, &h, &ch, 3);
  ASSERT_NE(px, nullptr) << stbi_failure_reason();
  stbi_image_free(px);
  EXPECT_EQ(w, scoring::confusion_png_layout(classes).width);
  EXPECT_EQ(h, scoring::confusion_png_layout(classes).height);
  EXPECT_FALSE(fs::exists(png.string() + ".part"));

  // Filters: actors 21-22 leave two clips.
  Result f =
      fervid("eval " + ravdess_dir().string() + " --device cpu --weights " + tiny8_weights() +
             " --max-frames 2 --actors 21-22 --summary " + summary.string());
  EXPECT_EQ(f.code, 0) << f.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(summary))["videos"], 2);
  EXPECT_NE(f.err.find("6 left out by the filters"), std::string::npos) << f.err;
}

TEST(Eval, RefusesUnlabelledInputsAndUnknownClassesInOneLine) {
  const std::string v = clip("c10.mp4", 10);
  expect_fatal("eval " + v + " --device cpu --weights " + tiny8_weights(), "no RAVDESS name");
  const fs::path csv = work_dir() / "labels.csv";
  std::ofstream(csv) << "path,label\n" << v << ",elated\n";
  expect_fatal(
      "eval " + v + " --device cpu --weights " + tiny8_weights() + " --labels " + csv.string(),
      "'elated'");
  std::ofstream(csv) << "path,label\n" << v << ",happy\n";
  Result ok = fervid("eval " + v + " --device cpu --weights " + tiny8_weights() + " --labels " +
                     csv.string() + " --quiet");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("(1/1 videos)"), std::string::npos) << ok.out;
  expect_fatal("classify " + v + " --device cpu --weights " + tiny8_weights() + " --resume",
               "--resume");
}

// Labels, counts and frames equal; probabilities to float rounding (the CPU's GEMMs round
// differently when a batch packs other frames).
void expect_same_rows(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["video"], b[i]["video"]);
    EXPECT_EQ(a[i]["label"], b[i]["label"]) << a[i]["video"];
    EXPECT_EQ(a[i]["frames"], b[i]["frames"]);
    EXPECT_EQ(a[i].value("counts", nlohmann::json()), b[i].value("counts", nlohmann::json()));
    EXPECT_EQ(a[i]["status"], b[i]["status"]);
    EXPECT_EQ(a[i]["run"], b[i]["run"]);
    if (a[i].contains("mean_probs")) {
      for (auto& [k, p] : a[i]["mean_probs"].items())
        EXPECT_NEAR(p.get<double>(), b[i]["mean_probs"][k].get<double>(), 1e-5);
    }
  }
}

TEST(Eval, ShardsMergedEqualOneUnshardedRun) {
  FERVID_NEED_RAVDESS();
  const std::string common =
      " --device cpu --weights " + tiny8_weights() + " --max-frames 4 --format jsonl --quiet";
  const fs::path all = work_dir() / "all.jsonl";
  fervid("eval " + ravdess_dir().string() + common + " --output " + all.string());
  std::string shards;
  for (int k = 1; k <= 3; ++k) {
    const fs::path s = work_dir() / ("shard" + std::to_string(k) + ".jsonl");
    Result r = fervid("eval " + ravdess_dir().string() + common + " --shard " + std::to_string(k) +
                      "/3 --output " + s.string());
    EXPECT_LE(r.code, 1) << r.err;
    EXPECT_GE(jsonl_rows(s).size(), 2u);
    shards += " " + s.string();
  }
  const fs::path merged = work_dir() / "merged.jsonl", summary = work_dir() / "merged.json",
                 png = work_dir() / "merged.png", all_summary = work_dir() / "all.json";
  Result m = fervid("merge" + shards + " --output " + merged.string() + " --summary " +
                    summary.string() + " --confusion " + png.string());
  ASSERT_EQ(m.code, 0) << m.err;
  expect_same_rows(jsonl_rows(merged), jsonl_rows(all));
  // Each shard's rows say which they are; the merge scores the rows as eval scores them.
  for (const auto& row : jsonl_rows(merged)) EXPECT_EQ(row["shard"].get<std::string>().size(), 3u);
  EXPECT_NE(m.out.find("video accuracy:"), std::string::npos) << m.out;
  fervid("eval " + ravdess_dir().string() + common + " --summary " + all_summary.string());
  const auto got = nlohmann::json::parse(slurp(summary)),
             want = nlohmann::json::parse(slurp(all_summary));
  for (const char* key : {"videos", "videos_failed", "frames", "frame_accuracy", "video_accuracy",
                          "macro_f1", "uar", "weighted_f1", "confusion", "per_actor"})
    EXPECT_EQ(got[key], want[key]) << key;
  EXPECT_EQ(slurp(png).substr(1, 3), "PNG");
  // An incomplete set of shards names the one missing.
  expect_fatal("merge " + (work_dir() / "shard1.jsonl").string() + " " +
                   (work_dir() / "shard3.jsonl").string() + " --output " +
                   (work_dir() / "two.jsonl").string(),
               "merge: shard 2/3 is missing");
  EXPECT_FALSE(fs::exists(work_dir() / "two.jsonl"));
  // Rows without a truth (classify's) merge but do not score.
  const fs::path plain = work_dir() / "plain.jsonl";
  fervid("classify " + ravdess_dir().string() + common + " --output " + plain.string());
  expect_fatal("merge " + plain.string() + " --output " + (work_dir() / "p.jsonl").string() +
                   " --summary " + (work_dir() / "p.json").string(),
               "carry no truth");
  // Outputs of other settings do not merge.
  const fs::path other = work_dir() / "other.jsonl";
  fervid("eval " + ravdess_dir().string() + common + " --vote majority --shard 1/3 --output " +
         other.string());
  expect_fatal("merge " + (work_dir() / "shard2.jsonl").string() + " " + other.string() +
                   " --output " + (work_dir() / "bad.jsonl").string(),
               "vote");
}

// fervid faces' JSON Lines (docs/faces.md): a video's face rows, then its closing row with the
// run's settings. merge joins shards by video, each video's block whole; the detector's run
// itself is tested in tests/detector_litert.py (it needs the converted weights).
TEST(Merge, JoinsFacesShardsByVideoAndRefusesAnUnfinishedBlock) {
  const std::string run = R"("run":{"command":"faces","detector":"0123456789abcdef","stride":1})";
  auto face = [](const char* video, int frame) {
    return std::string(R"({"video":")") + video + R"(","frame":)" + std::to_string(frame) +
           R"(,"time_s":0.1,"track":1,"box":[1,2,3,4],"score":0.9,"detected":true})" + "\n";
  };
  auto closing = [&](const char* video, const char* shard) {
    return std::string(R"({"video":")") + video + R"(","frames":2,"with_face":2,"tracks":1,)" +
           R"("status":"ok","shard":")" + shard + R"(",)" + run + "}\n";
  };
  const fs::path s1 = work_dir() / "faces-1.jsonl", s2 = work_dir() / "faces-2.jsonl",
                 merged = work_dir() / "faces-merged.jsonl";
  std::ofstream(s1) << face("c.mp4", 0) << face("c.mp4", 1) << closing("c.mp4", "1/2")
                    << face("a.mp4", 0) << closing("a.mp4", "1/2");
  std::ofstream(s2) << R"({"video":"b.mp4","error":"b.mp4: no such file or directory",)"
                    << R"("status":"error: b.mp4: no such file or directory","shard":"2/2",)" << run
                    << "}\n";
  Result r = fervid("merge " + s1.string() + " " + s2.string() + " --output " + merged.string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> videos;
  std::vector<bool> closes;
  for (const auto& row : jsonl_rows(merged)) {
    videos.push_back(row["video"]);
    closes.push_back(row.contains("run"));
  }
  EXPECT_EQ(videos,
            (std::vector<std::string>{"a.mp4", "a.mp4", "b.mp4", "c.mp4", "c.mp4", "c.mp4"}));
  EXPECT_EQ(closes, (std::vector<bool>{false, true, true, false, false, true}));
  // A shard whose last video lacks its closing row was cut off: refused, nothing written.
  const fs::path cut = work_dir() / "faces-cut.jsonl", none = work_dir() / "faces-none.jsonl";
  std::ofstream(cut) << closing("a.mp4", "1/2") << face("c.mp4", 0);
  expect_fatal("merge " + cut.string() + " " + s2.string() + " --output " + none.string(),
               "the rows of c.mp4 end without their closing row");
  EXPECT_FALSE(fs::exists(none));
  expect_fatal("merge " + s1.string() + " " + s2.string() + " --output " + none.string() +
                   " --summary " + (work_dir() / "faces.json").string(),
               "carry no truth");
  // --resume continues JSON Lines only (refused before the detector is read).
  expect_fatal("faces x.mp4 --output " + (work_dir() / "faces.csv").string() + " --resume",
               "--resume continues a JSON Lines output");
}

TEST(Eval, ResumeAfterAKilledRunEqualsAnUninterruptedRun) {
  // Enough work that the run is still going when its first row appears: 16 clips of real video.
  const fs::path dir = work_dir() / "many";
  fs::create_directories(dir);
  for (int i = 1; i <= 16; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "02-01-%02d-01-01-01-%02d.avi", 1 + i % 8, i);
    fs::create_symlink(std::string(FERVID_DATA_DIR) + "/video/vtest.avi", dir / name);
  }
  const std::string common = " --device cpu --weights " + tiny8_weights() +
                             " --max-frames 40 --batch 4 --format jsonl --quiet --output ";
  const fs::path full = work_dir() / "full.jsonl", cut = work_dir() / "cut.jsonl";
  ASSERT_EQ(fervid("eval " + dir.string() + common + full.string()).code, 0);
  const std::string part = cut.string() + ".part";
  sh("(" + kBin + " eval " + dir.string() + common + cut.string() + " 2>/dev/null & pid=$!; " +
     "for i in $(seq 1 4000); do [ -s " + part + " ] && break; sleep 0.005; done; " +
     "kill -9 $pid; wait $pid; true)");
  ASSERT_FALSE(fs::exists(cut)) << "the run finished before it could be killed";
  ASSERT_TRUE(fs::exists(part));
  const size_t kept = jsonl_rows(part).size();
  EXPECT_LT(kept, 16u);
  // Other settings are refused, naming the difference; the same settings finish the job.
  expect_fatal("eval " + dir.string() + common + cut.string() + " --resume --stride 2", "stride");
  Result r = fervid("eval " + dir.string() + common + cut.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(part));
  expect_same_rows(jsonl_rows(cut), jsonl_rows(full));
  // Resuming a finished output has nothing left to do and leaves it as it was.
  const std::string before = slurp(cut);
  ASSERT_EQ(fervid("eval " + dir.string() + common + cut.string() + " --resume").code, 0);
  EXPECT_EQ(slurp(cut), before);
}

TEST(Eval, HaarCropWarnsInTheRowWhenNoFaceIsFound) {
  const std::string data = FERVID_DATA_DIR;
  Result r = fervid("classify " + data + "/video/astronaut-720p.mp4 " + data +
                    "/video/vtest.avi --device cpu --weights " + tiny8_weights() +
                    " --crop haar --max-frames 8 --format jsonl");
  if (r.err.find("no face detector") != std::string::npos) GTEST_SKIP() << r.err;
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream in(r.out);
  std::string a, b;
  std::getline(in, a);
  std::getline(in, b);
  const auto face = nlohmann::json::parse(a), street = nlohmann::json::parse(b);
  EXPECT_FALSE(face.contains("warning")) << a;
  EXPECT_LT(face["crop"][2].get<int>(), 400) << a;  // a face, not the whole 720p frame
  EXPECT_NE(street.value("warning", "").find("no face found"), std::string::npos) << b;
  EXPECT_EQ(street["crop"], nlohmann::json({96, 0, 576, 576})) << b;
  EXPECT_NE(r.err.find("warning: " + data + "/video/vtest.avi: no face found"), std::string::npos)
      << r.err;
}

TEST(Cli, BenchEndToEndReportsTheWholeJob) {
  const std::string v = clip("c10.mp4", 10);
  tiny8_weights();  // writes the card
  Result r = fervid("bench --end-to-end " + v + " " + v + " --repeat 3 --spec " +
                    (work_dir() / "tiny8.json").string() + " --batch 4 7 --device cpu --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["videos"], 6);
  ASSERT_EQ(j["results"].size(), 2u);
  for (const auto& row : j["results"]) {
    EXPECT_EQ(row["frames"], 60);
    EXPECT_EQ(row["videos_failed"], 0);
    EXPECT_GT(row["frames_per_s"].get<double>(), 0.0);
    for (const char* share : {"decode_busy", "decode_blocked", "model_busy", "model_starved"}) {
      EXPECT_GE(row[share].get<double>(), 0.0) << share;
      EXPECT_LE(row[share].get<double>(), 1.0 + 1e-9) << share;
    }
    // The stage shares: on the CPU every stage runs on the model thread, so waiting, the stages
    // and the rest of its work add up to the whole run.
    const auto& st = row["stages"];
    double sum = 0, most = 0;
    for (const char* stage : {"decode", "preprocess", "frame_stage", "vote", "host"}) {
      EXPECT_GE(st[stage].get<double>(), 0.0) << stage;
      sum += st[stage].get<double>();
      most = std::max(most, st[stage].get<double>());
    }
    EXPECT_NEAR(sum, 1.0, 1e-6) << st;
    EXPECT_GT(st["preprocess"].get<double>(), 0.0) << st;
    EXPECT_GT(st["frame_stage"].get<double>(), 0.0) << st;
    EXPECT_GT(st["vote"].get<double>(), 0.0) << st;
    EXPECT_EQ(st[st["bottleneck"].get<std::string>()].get<double>(), most) << st;
  }
  EXPECT_GT(j["peak_host_rss_mib"].get<double>(), 0.0);
  expect_fatal("bench " + v, "--end-to-end");
}

// The progress line: redrawn on a terminal (a pty from util-linux's `script`), a line every 30 s
// elsewhere (FERVID_PROGRESS_SECONDS to change), none with --quiet.

TEST(Cli, ProgressRedrawnOnATerminalAndLoggedElsewhere) {
  if (std::system("command -v script >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no `script` (util-linux) to give the run a terminal";
  const std::string v = clip("c10.mp4", 10);
  const std::string args =
      "classify " + v + " " + v + " --device cpu --weights " + tiny_weights() + " --max-frames 3";
  auto on_tty = [&](const std::string& extra) {
    const fs::path log = work_dir() / "tty.txt";
    const std::string cmd =
        "script -qec '" + kBin + " " + args + extra + "' " + log.string() + " >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return slurp(log);
  };
  const std::string shown = on_tty("");
  EXPECT_NE(shown.find("2/2 videos, "), std::string::npos) << shown;
  EXPECT_NE(shown.find(" frames/s"), std::string::npos) << shown;
  EXPECT_EQ(on_tty(" --quiet").find("2/2 videos"), std::string::npos);
  // In a pipe (a Slurm or nohup log): a line every 30 s, none in a run this short...
  Result piped = fervid(args);
  EXPECT_EQ(piped.code, 0) << piped.err;
  EXPECT_EQ(piped.err.find("videos, "), std::string::npos) << piped.err;
  // ... and one a video when the interval is shorter than a video, not with --quiet.
  Result logged = fervid(args, "FERVID_PROGRESS_SECONDS=0");
  EXPECT_NE(logged.err.find("fervid: progress: 1/2 videos, "), std::string::npos) << logged.err;
  EXPECT_EQ(logged.err.find("\r"), std::string::npos);  // lines, not a line redrawn
  logged = fervid(args + " --quiet", "FERVID_PROGRESS_SECONDS=0");
  EXPECT_EQ(logged.err.find("progress"), std::string::npos) << logged.err;
  // bench --end-to-end says which run it is at on a terminal, and nothing of it in a log.
  const fs::path log = work_dir() / "bench-tty.txt";
  const std::string bench = "bench --end-to-end " + v + " --device cpu --spec " +
                            (work_dir() / "tiny.json").string() + " --batch 2 4";
  tiny_weights();  // writes the card
  EXPECT_EQ(
      std::system(("script -qec '" + kBin + " " + bench + "' " + log.string() + " >/dev/null 2>&1")
                      .c_str()),
      0);
  EXPECT_NE(slurp(log).find("bench: batch 4, the default decode threads (2 of 2)"),
            std::string::npos)
      << slurp(log);
  EXPECT_EQ(fervid(bench).err.find("bench: batch"), std::string::npos);
}

// The fields of a CSV row after its first (the input's name).
std::string after_name(const std::string& csv_out) {
  const std::string row = csv_out.substr(csv_out.find('\n') + 1);
  return row.substr(row.find(','));
}

// A finite stream classifies like the file it carries: standard input ("-", "pipe:0"), and an
// HTTP URL (a loopback server of Debian's Python); an MP4 whose index comes last, read from a
// pipe, fails in its row with what to do.
TEST(Cli, UrlsAndStandardInputClassifyLikeFiles) {
  const fs::path dir = work_dir() / "served";
  fs::create_directories(dir);
  const std::string mp4 = clip("c12.mp4", 12), faststart = (dir / "fast.mp4").string();
  sh("ffmpeg -nostdin -v error -y -i " + mp4 + " -c copy -movflags +faststart " + faststart);
  const std::string opts = " --weights " + tiny_weights() + " --format csv --quiet";
  const Result file = fervid("classify " + faststart + opts);
  ASSERT_EQ(file.code, 0) << file.err;
  for (const char* name : {"-", "pipe:0"}) {
    const Result piped = fervid("classify " + std::string(name) + opts + " < " + faststart);
    ASSERT_EQ(piped.code, 0) << piped.err;
    EXPECT_EQ(after_name(piped.out), after_name(file.out)) << name;
  }
  // A real clip (the index after 350 kB of frames, beyond what the demuxer holds to seek back in).
  const std::string late_index = test_data_dir() + "/video/astronaut-720p.mp4";
  const Result cat = fervid("classify -" + opts, "cat " + late_index + " |");
  EXPECT_EQ(cat.code, 1) << cat.err;
  EXPECT_NE(cat.out.find("-movflags +faststart"), std::string::npos) << cat.out;
  // HTTP: a server on a free port of 127.0.0.1, for as long as the test needs it.
  const fs::path port_file = dir / "port";
  sh("cd " + dir.string() +
     " && (/usr/bin/python3 -c \"import http.server as h, socketserver as s; "
     "srv = s.TCPServer(('127.0.0.1', 0), h.SimpleHTTPRequestHandler); "
     "print(srv.server_address[1], flush=True); srv.serve_forever()\" > " +
     port_file.string() + " 2>/dev/null & echo $! > " + (dir / "pid").string() +
     ") && for i in $(seq 50); do [ -s " + port_file.string() + " ] && break; sleep 0.1; done");
  const std::string port = slurp(port_file).substr(0, slurp(port_file).find('\n'));
  const Result http = fervid("classify http://127.0.0.1:" + port + "/fast.mp4" + opts);
  std::system(("kill " + slurp(dir / "pid")).c_str());
  ASSERT_EQ(http.code, 0) << http.err;
  EXPECT_EQ(after_name(http.out), after_name(file.out));
}

// A bare state_dict (no card in the file) with --spec: the card's class order is taken on trust,
// and the run says so, with the way to carry the model's own.
TEST(Cli, ABareStateDictSaysTheClassOrderIsAssumed) {
  const std::string bare = (work_dir() / "bare.safetensors").string();
  {
    std::string all = slurp(tiny_weights());
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | uint8_t(all[size_t(i)]);
    nlohmann::json header = nlohmann::json::parse(all.substr(8, n));
    header.erase("__metadata__");
    std::string text = header.dump();
    ASSERT_LE(text.size(), n);
    text.append(n - text.size(), ' ');  // the same length: the data stays where it was
    std::ofstream(bare, std::ios::binary) << all.substr(0, 8) << text << all.substr(8 + n);
  }
  const std::string card = (work_dir() / "tiny.json").string();
  const Result r =
      fervid("classify " + clip("c10.mp4", 10) + " --weights " + bare + " --spec " + card);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find(bare + " carries no class names: the order of " + card +
                       " (neutral, happy, sad) is assumed"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("tools/export_weights.py"), std::string::npos) << r.err;
  const Result with_card = fervid("classify " + clip("c10.mp4", 10) + " --weights " +
                                  tiny_weights() + " --spec " + card);
  EXPECT_EQ(with_card.err.find("carries no class names"), std::string::npos) << with_card.err;
}

}  // namespace
}  // namespace fervid::test
