// The fervid CLI end to end: exit codes, one-line errors naming the input, result files written
// completely or not at all, the output formats, make-weights and inspect.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace fs = std::filesystem;

namespace fervid::test {
namespace {

const std::string kBin = FERVID_BIN;

fs::path work_dir() {
  static const fs::path dir = temp_dir("cli");
  return dir;
}

struct Result {
  int code;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result fervid(const std::string& args) {
  const fs::path err = work_dir() / "stderr.txt";
  std::string cmd = kBin + " " + args + " 2>" + err.string();
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, slurp(err)};
}

int lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

void sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

// A tiny model (16x16 input) so that end-to-end runs take milliseconds.
const std::string& tiny_weights() {
  static std::string w = [] {
    fs::path card = work_dir() / "tiny.json";
    std::ofstream(card) << R"({"name":"tiny","config":[8,"M",8,"M"],"input_size":16,"head":"gap",
      "dense":[12],"classes":["neutral","happy","sad"],"preprocess":"study","vote":"majority"})";
    std::string out = (work_dir() / "tiny.safetensors").string();
    Result r = fervid("make-weights --seed 3 --spec " + card.string() + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    return out;
  }();
  return w;
}

std::string clip(const std::string& name, int frames) {
  fs::path p = work_dir() / name;
  if (!fs::exists(p))
    sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x48:rate=10 -frames:v " +
       std::to_string(frames) + " -pix_fmt yuv420p " + p.string());
  return p.string();
}

TEST(Cli, HelpAndVersion) {
  Result r = fervid("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("classify"), std::string::npos);
  for (const char* cmd : {"classify", "make-weights", "inspect", "bench"}) {
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

void expect_fatal(const std::string& args, const std::string& reason) {
  Result r = fervid(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(reason), std::string::npos) << r.err;
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
}

TEST(Cli, NoGpuMeansCudaFailsAndAutoFallsBack) {
  const std::string v = clip("c10.mp4", 10);
  Result probe = fervid("classify " + v + " --weights " + tiny_weights() + " --device auto");
  ASSERT_EQ(probe.code, 0) << probe.err;
  if (probe.err.find("using the CPU backend") == std::string::npos)
    GTEST_SKIP() << "a CUDA backend is usable here";
  expect_fatal("classify " + v + " --weights " + tiny_weights() + " --device cuda",
               "--device cuda:");
}

TEST(Cli, ClassifiesAndReportsBadVideosInTheirRows) {
  SeedTrace trace;
  const std::string good = clip("c10.mp4", 10), other = clip("c7.mp4", 7);
  fs::path junk = work_dir() / "junk.mp4";
  {
    std::ofstream out(junk, std::ios::binary);
    for (int i = 0; i < 3000; ++i) out.put(char(rng()() & 0xff));
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
  EXPECT_EQ(csv.rfind("video,frames,label,vote,count_neutral,count_happy,count_sad,p_neutral", 0),
            0u);
  std::istringstream rows(csv);
  std::string line;
  std::getline(rows, line);
  std::getline(rows, line);
  EXPECT_EQ(line.rfind(good + ",10,", 0), 0u) << line;
  EXPECT_NE(line.find(",majority,"), std::string::npos) << line;
  EXPECT_NE(line.find(",ok"), std::string::npos) << line;
  std::getline(rows, line);
  EXPECT_EQ(line.rfind(junk.string() + ",0,,", 0), 0u) << line;
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
      fcsv.rfind("video,frame,label,p_neutral,p_happy,p_sad,logit_neutral,logit_happy,logit_sad\n",
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

}  // namespace
}  // namespace fervid::test
