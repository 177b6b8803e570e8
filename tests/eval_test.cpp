// The pieces of `fervid eval` without the model: RAVDESS names and filters, labels CSVs, shards,
// the metrics on small cases computed by hand, and the confusion PNG.
#include <stb_image.h>

#include <filesystem>
#include <fstream>

#include "dataset.h"
#include "fervid/error.h"
#include "metrics.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace fervid::test {
namespace {

using scoring::EvalRow;

TEST(Ravdess, ParsesTheSevenFields) {
  auto n = scoring::parse_ravdess("/data/Actor_12/02-01-06-01-02-01-12.mp4");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->modality, 2);
  EXPECT_EQ(n->channel, 1);
  EXPECT_EQ(n->emotion, 6);
  EXPECT_EQ(scoring::kRavdessEmotions[n->emotion - 1], "fearful");
  EXPECT_EQ(n->intensity, 1);
  EXPECT_EQ(n->statement, 2);
  EXPECT_EQ(n->repetition, 1);
  EXPECT_EQ(n->actor, 12);
  // Renamed copies keep their label; folders of frames too.
  EXPECT_EQ(scoring::parse_ravdess("01-01-07-02-02-01-01_1.mp4")->emotion, 7);
  EXPECT_EQ(scoring::parse_ravdess("frames/01-02-03-02-01-02-24/")->actor, 24);
  EXPECT_EQ(scoring::parse_ravdess("03-01-01-01-01-01-05.wav")->modality, 3);
  for (const char* bad :
       {"02-01-06-01-02-01.mp4", "02-01-09-01-02-01-12.mp4", "02-01-06-01-02-01-25.mp4",
        "04-01-06-01-02-01-12.mp4", "02_01_06_01_02_01_12.mp4", "02-01-06-01-02-01-123.mp4",
        "vtest.avi", "2-01-06-01-02-01-12.mp4", "02-03-06-01-02-01-12.mp4"})
    EXPECT_FALSE(scoring::parse_ravdess(bad)) << bad;
}

TEST(Ravdess, FiltersByActorModalityChannelEmotion) {
  auto f = scoring::RavdessFilter::parse("21-24", "happy,4", "video", "speech");
  EXPECT_EQ(f.actors, (std::vector<int>{21, 22, 23, 24}));
  EXPECT_EQ(f.emotions, (std::vector<int>{3, 4}));
  auto name = [](const char* s) { return *scoring::parse_ravdess(s); };
  EXPECT_TRUE(f.keep(name("02-01-03-01-01-01-21.mp4")));
  EXPECT_TRUE(f.keep(name("02-01-04-02-02-02-24.mp4")));
  EXPECT_FALSE(f.keep(name("02-01-03-01-01-01-20.mp4")));  // actor
  EXPECT_FALSE(f.keep(name("01-01-03-01-01-01-21.mp4")));  // audio-video
  EXPECT_FALSE(f.keep(name("02-02-03-01-01-01-21.mp4")));  // song
  EXPECT_FALSE(f.keep(name("02-01-05-01-01-01-21.mp4")));  // angry
  auto all = scoring::RavdessFilter::parse("", "", "", "");
  EXPECT_FALSE(all.any());
  EXPECT_TRUE(all.keep(name("01-02-08-01-01-01-01.mp4")));
  EXPECT_FALSE(all.keep(name("03-01-08-01-01-01-01.mp4")));  // audio only, never
  EXPECT_EQ(scoring::RavdessFilter::parse("1,3,5-6", "", "av", "").actors,
            (std::vector<int>{1, 3, 5, 6}));
  for (auto [a, e, m, c] : {std::tuple{"0-3", "", "", ""}, std::tuple{"5-x", "", "", ""},
                            std::tuple{"", "joy", "", ""}, std::tuple{"", "9", "", ""},
                            std::tuple{"", "", "audio", ""}, std::tuple{"", "", "", "shout"}})
    EXPECT_THROW(scoring::RavdessFilter::parse(a, e, m, c), Error) << a << e << m << c;
}

const std::vector<std::string> kClasses = {"neutral", "calm",    "happy",   "sad",
                                           "angry",   "fearful", "disgust", "surprised"};

InputItem video(const std::string& path) { return {path, InputKind::Video, ""}; }

TEST(Ravdess, LabelsInputsAndRefusesOthersListingThem) {
  std::vector<InputItem> in = {video("a/02-01-03-01-01-01-21.mp4"),
                               video("a/03-01-03-01-01-01-21.wav"),
                               video("a/02-01-05-01-01-01-02.mp4"),
                               {"missing.mp4", InputKind::Invalid, "missing.mp4: no such file"}};
  std::string notice;
  auto l = scoring::label_inputs(in, kClasses, "", scoring::RavdessFilter::parse("21", "", "", ""),
                                 &notice);
  ASSERT_EQ(l.size(), 2u);  // actor 21's video, and the missing path (reported as an error row)
  EXPECT_EQ(l[0].truth, 2);
  EXPECT_EQ(l[0].actor, 21);
  EXPECT_EQ(l[1].item.kind, InputKind::Invalid);
  EXPECT_NE(notice.find("1 audio-only"), std::string::npos) << notice;
  EXPECT_NE(notice.find("1 left out by the filters"), std::string::npos) << notice;

  std::vector<InputItem> mixed = {video("x/02-01-03-01-01-01-21.mp4"), video("x/clip1.mp4"),
                                  video("x/clip2.mp4")};
  try {
    scoring::label_inputs(mixed, kClasses, "", {}, nullptr);
    ADD_FAILURE() << "accepted names without labels";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("2 inputs have no RAVDESS name"), std::string::npos) << msg;
    EXPECT_NE(msg.find("x/clip1.mp4, x/clip2.mp4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--labels"), std::string::npos) << msg;
  }
  // A model without "calm": its clips are named, not silently dropped.
  std::vector<std::string> seven = kClasses;
  seven.erase(seven.begin() + 1);
  EXPECT_THROW(scoring::label_inputs({video("02-01-02-01-01-01-01.mp4")}, seven, "", {}, nullptr),
               Error);
}

TEST(Ravdess, LabelsCsvByPathRelativeToTheCsv) {
  const fs::path dir = temp_dir("labels");
  fs::create_directories(dir / "clips");
  const fs::path csv = dir / "labels.csv";
  std::ofstream(csv) << "path,label\nclips/one.mp4,happy\n\"clips/two, b.mp4\",sad\n";
  const std::string one = (dir / "clips/one.mp4").string(),
                    two = (dir / "clips/two, b.mp4").string();
  auto l = scoring::label_inputs({video(one), video(two)}, kClasses, csv.string(), {}, nullptr);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].truth, 2);
  EXPECT_EQ(l[1].truth, 3);
  EXPECT_EQ(l[0].actor, 0);
  // An input the CSV does not list, and a label that is no class: one clear error each.
  EXPECT_THROW(scoring::label_inputs({video(one), video((dir / "clips/three.mp4").string())},
                                     kClasses, csv.string(), {}, nullptr),
               Error);
  const fs::path bad = dir / "bad.csv";
  std::ofstream(bad) << "clips/one.mp4,joyful\nclips/two.mp4,happy\n";
  try {
    scoring::label_inputs({video(one)}, kClasses, bad.string(), {}, nullptr);
    ADD_FAILURE() << "accepted an unknown class";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'joyful' (line 1)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(scoring::label_inputs({video(one)}, kClasses, csv.string(),
                                     scoring::RavdessFilter::parse("1", "", "", ""), nullptr),
               Error);
}

TEST(Shards, PartitionTheSortedInputsDeterministically) {
  const std::vector<std::string> paths = {"e", "a", "d", "b", "c", "f", "g"};
  std::vector<int> owner(paths.size(), 0);
  for (int k = 1; k <= 3; ++k)
    for (size_t i :
         scoring::shard_positions(paths, scoring::Shard::parse(std::to_string(k) + "/3")))
      owner[i] += k;
  // Sorted a b c d e f g -> shards 1 2 3 1 2 3 1.
  EXPECT_EQ(owner, (std::vector<int>{2, 1, 1, 2, 3, 3, 1}));
  EXPECT_EQ(scoring::shard_positions(paths, scoring::Shard::parse("1/1")).size(), paths.size());
  for (const char* bad : {"0/3", "4/3", "3", "a/b", "1/0"})
    EXPECT_THROW(scoring::Shard::parse(bad), Error) << bad;
}

EvalRow row(int truth, int predicted, std::vector<int64_t> counts, int actor = 0) {
  EvalRow r;
  r.truth = truth;
  r.predicted = predicted;
  r.counts = std::move(counts);
  r.actor = actor;
  return r;
}

// Three classes, five videos and one failure, worked out by hand:
//   truth 0: predicted 0 (frames 3,1,0) and 1 (frames 1,2,0)
//   truth 1: predicted 1 (frames 0,4,0)
//   truth 2: predicted 0 (frames 2,0,1) and 2 (frames 0,0,5)
TEST(Metrics, SmallCaseComputedByHand) {
  const std::vector<std::string> classes = {"a", "b", "c"};
  std::vector<EvalRow> rows = {row(0, 0, {3, 1, 0}, 1), row(0, 1, {1, 2, 0}, 1),
                               row(1, 1, {0, 4, 0}, 2), row(2, 0, {2, 0, 1}, 2),
                               row(2, 2, {0, 0, 5}, 2)};
  EvalRow failed;
  failed.truth = 1;
  failed.error = "cannot open";
  rows.push_back(failed);
  const scoring::EvalMetrics m = scoring::compute_metrics(rows, classes);
  EXPECT_EQ(m.videos, 5);
  EXPECT_EQ(m.videos_failed, 1);
  EXPECT_EQ(m.videos_correct, 3);
  EXPECT_DOUBLE_EQ(m.video_accuracy, 3.0 / 5.0);
  EXPECT_EQ(m.frames, 19);
  EXPECT_EQ(m.frames_correct, 3 + 1 + 4 + 1 + 5);  // counts of each video's true class
  EXPECT_DOUBLE_EQ(m.frame_accuracy, 14.0 / 19.0);
  EXPECT_EQ(m.confusion, (std::vector<std::vector<int64_t>>{{1, 1, 0}, {0, 1, 0}, {1, 0, 1}}));
  EXPECT_EQ(m.frame_confusion,
            (std::vector<std::vector<int64_t>>{{4, 3, 0}, {0, 4, 0}, {2, 0, 6}}));
  // a: P 1/2, R 1/2, F1 1/2; b: P 1/2, R 1, F1 2/3; c: P 1, R 1/2, F1 2/3.
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[1].recall, 1.0);
  EXPECT_NEAR(m.per_class[1].f1, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(m.per_class[2].precision, 1.0);
  EXPECT_NEAR(m.per_class[2].f1, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(m.per_class[2].support, 2);
  EXPECT_NEAR(m.macro_f1, (0.5 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0, 1e-12);
  // UAR: the recalls 1/2, 1, 1/2 averaged; weighted F1: (1/2 * 2 + 2/3 * 1 + 2/3 * 2) / 5.
  EXPECT_NEAR(m.uar, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.weighted_f1, 0.6, 1e-12);
  ASSERT_EQ(m.per_actor.size(), 2u);
  EXPECT_EQ(m.per_actor[0].actor, 1);
  EXPECT_EQ(m.per_actor[0].correct, 1);
  EXPECT_EQ(m.per_actor[1].videos, 3);
  EXPECT_EQ(m.per_actor[1].correct, 2);
  const auto j = scoring::metrics_json(m);
  EXPECT_EQ(j["confusion"][2][0], 1);
  EXPECT_EQ(j["per_class"][1]["class"], "b");
  const std::string text = scoring::metrics_text(m);
  EXPECT_NE(text.find("video accuracy: 60.00 % (3/5 videos)"), std::string::npos) << text;
  EXPECT_NE(text.find("unweighted average recall (UAR): 66.67 %"), std::string::npos) << text;
  EXPECT_NEAR(j["uar"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_NE(text.find("1 failed"), std::string::npos) << text;
}

TEST(Metrics, MacroF1LeavesOutClassesThatNeverOccur) {
  // Class c is neither a truth nor a prediction: macro-F1 averages a and b only.
  const scoring::EvalMetrics m =
      scoring::compute_metrics({row(0, 0, {1, 0, 0}), row(1, 0, {1, 0, 0})}, {"a", "b", "c"});
  // a: P 1/2, R 1, F1 2/3; b: P 0 (never predicted), R 0, F1 0.
  EXPECT_NEAR(m.macro_f1, (2.0 / 3.0 + 0.0) / 2.0, 1e-12);
  EXPECT_EQ(scoring::compute_metrics({}, {"a"}).videos, 0);
}

TEST(Metrics, ConfusionPngDecodesWithItsLayoutsSizeAndShades) {
  const std::vector<std::string> classes = {"neutral", "happy", "surprised"};
  const scoring::EvalMetrics m = scoring::compute_metrics(
      {row(0, 0, {1, 0, 0}), row(0, 0, {1, 0, 0}), row(1, 2, {0, 0, 1}), row(2, 2, {0, 0, 1})},
      classes);
  const fs::path png = temp_dir("png") / "cm.png";
  fs::create_directories(png.parent_path());
  scoring::write_confusion_png(m, OutputTarget::at(png.string(), "--confusion"), "test");
  int w = 0, h = 0, ch = 0;
  unsigned char* px = stbi_load(png.string().c_str(), &w, &h, &ch, 3);
  ASSERT_NE(px, nullptr) << stbi_failure_reason();
  const scoring::PngLayout l = scoring::confusion_png_layout(classes);
  EXPECT_EQ(w, l.width);
  EXPECT_EQ(h, l.height);
  EXPECT_EQ(w, l.left + 3 * l.cell + l.right);
  auto pixel = [&](int x, int y) { return px[(size_t(y) * w + x) * 3]; };
  // A full row (neutral -> neutral, 2 of 2) is dark; an empty cell is white; near a corner of
  // each cell, away from its number.
  EXPECT_LT(pixel(l.left + 4, l.top + 4), 40);
  EXPECT_EQ(pixel(l.left + l.cell + 4, l.top + 4), 255);
  // Text was drawn: the label column has dark pixels.
  int dark = 0;
  for (int y = l.top; y < l.top + 3 * l.cell; ++y)
    for (int x = 0; x < l.left - 4; ++x) dark += pixel(x, y) < 128;
  EXPECT_GT(dark, 50);
  stbi_image_free(px);
}

}  // namespace
}  // namespace fervid::test
