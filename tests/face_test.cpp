// --crop haar: OpenCV's cascade finds the face on the real photos and the face video of
// ../shared/data, finds none on street footage (vtest.avi, where the pipeline falls back to the
// centre crop with a warning in the row), and boxes=FILE crops each video by its own box.
#include "face.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backends/cpu/cpu_backend.h"
#include "classifier.h"
#include "fervid/weights.h"
#include "test_util.h"
#include "video.h"

namespace fs = std::filesystem;

namespace fervid::test {
namespace {

const std::string kData = FERVID_DATA_DIR;

bool contains(const CropRect& r, int x, int y) {
  return x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
}

std::vector<Frame> frames_of(const std::string& path, InputKind kind, int stride, int max) {
  auto src = open_frames({path, kind, ""}, {stride, max});
  std::vector<Frame> frames;
  Frame f;
  while (src->next(f)) frames.push_back(f);
  return frames;
}

TEST(Face, FindsTheFaceOnThePhotos) {
  FaceFinder finder;
  // astronaut.png (512x512): Eileen Collins' face is around (225, 115); messi5.jpg (548x342):
  // the player's face around (285, 105).
  const std::tuple<const char*, int, int> photos[] = {{"/faces/astronaut.png", 225, 115},
                                                      {"/faces/messi5.jpg", 285, 105}};
  for (auto [name, fx, fy] : photos) {
    Frame f = load_image(kData + name);
    std::vector<CropRect> faces = finder.detect(f.view());
    ASSERT_FALSE(faces.empty()) << name;
    const CropRect& r = faces.front();
    EXPECT_TRUE(contains(r, fx, fy)) << name << ": " << r.x << "," << r.y << " " << r.width;
    EXPECT_GT(r.width, f.width / 10) << name;
    EXPECT_LT(r.width, f.width / 2) << name;
    // The video crop: square, inside the frame, holding the face with its margin.
    const ImageView view = f.view();
    int found = 0;
    auto box = finder.video_box({&view, 1}, 0.25, &found);
    ASSERT_TRUE(box) << name;
    EXPECT_EQ(found, 1);
    EXPECT_EQ(box->width, box->height);
    EXPECT_TRUE(box->x >= 0 && box->y >= 0 && box->x + box->width <= f.width &&
                box->y + box->height <= f.height);
    EXPECT_TRUE(contains(*box, r.x, r.y) && contains(*box, r.x + r.width - 1, r.y + r.height - 1));
  }
}

TEST(Face, FindsTheFaceThroughTheFaceVideoAndNoneOnStreetFootage) {
  FaceFinder finder;
  // astronaut-720p.mp4: the portrait centred on white, zooming slowly; its face stays near
  // (600, 190) of 1280x720.
  std::vector<Frame> clip = frames_of(kData + "/video/astronaut-720p.mp4", InputKind::Video, 15, 7);
  std::vector<ImageView> views;
  for (const Frame& f : clip) views.push_back(f.view());
  int found = 0;
  auto box = finder.video_box(views, 0.25, &found);
  ASSERT_TRUE(box);
  EXPECT_EQ(found, int(views.size()));
  EXPECT_TRUE(contains(*box, 600, 190)) << box->x << "," << box->y << " " << box->width;
  EXPECT_LT(box->width, 400);
  std::vector<Frame> street = frames_of(kData + "/video/vtest.avi", InputKind::Video, 20, 6);
  views.clear();
  for (const Frame& f : street) views.push_back(f.view());
  EXPECT_FALSE(finder.video_box(views, 0.25, &found));
  EXPECT_EQ(found, 0);
}

TEST(Face, SquareInsideMovesAndShrinksTheBoxIntoTheFrame) {
  const CropRect a = square_inside(10, 10, 100, 640, 480);  // pushed right and down
  EXPECT_EQ(a.x, 0);
  EXPECT_EQ(a.y, 0);
  EXPECT_EQ(a.width, 100);
  const CropRect b = square_inside(320, 240, 900, 640, 480);  // shrunk to the shorter side
  EXPECT_EQ(b.width, 480);
  EXPECT_EQ(b.x, 80);
  EXPECT_EQ(b.y, 0);
  const CropRect c = square_inside(630, 470, 50, 640, 480);
  EXPECT_EQ(c.x + c.width, 640);
  EXPECT_EQ(c.y + c.height, 480);
}

// Through the classifier: the face video gets a face box and no warning; the street footage
// the centre crop and a warning; boxes=FILE gives each listed video its box and fails the
// others in their rows.
TEST(Face, ClassifierCropsPerVideoAndFallsBackVisibly) {
  const fs::path dir = temp_dir("face");
  fs::create_directories(dir);
  const ModelSpec spec = ModelSpec::from_json(
      nlohmann::json::parse(R"({"name":"tiny","config":[8,"M"],"input_size":16,"head":"gap",
        "dense":[],"classes":["a","b"],"preprocess":"study","vote":"majority"})"),
      "test");
  const std::string wpath = (dir / "w.safetensors").string();
  make_weights(spec, seed(), StDType::F32, wpath);
  Weights weights = Weights::load(wpath);
  auto backend = cpu::make_cpu_backend(0);
  Model model(weights, *backend, 4);
  const std::vector<InputItem> inputs = {
      {kData + "/video/astronaut-720p.mp4", InputKind::Video, ""},
      {kData + "/video/vtest.avi", InputKind::Video, ""}};
  ClassifyOptions opt;
  opt.batch = 4;
  opt.sampling = {10, 6};
  opt.crop = CropSpec::parse("haar");
  std::vector<VideoResult> rows;
  Classifier(model, opt).run(inputs, [&](const VideoResult& r) { rows.push_back(r); });
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0].ok()) << rows[0].error;
  EXPECT_EQ(rows[0].warning, "");
  EXPECT_TRUE(contains(rows[0].crop, 600, 190));
  EXPECT_LT(rows[0].crop.width, 400);
  EXPECT_TRUE(rows[1].ok()) << rows[1].error;
  EXPECT_NE(rows[1].warning.find("no face found"), std::string::npos);
  EXPECT_EQ(rows[1].crop.width, 576);  // vtest.avi is 768x576: the centre square
  EXPECT_EQ(rows[1].crop.x, 96);

  const fs::path csv = dir / "boxes.csv";
  std::ofstream(csv) << "path,x,y,w,h\n" << inputs[0].path << ",500,100,200,220\n";
  opt.crop = CropSpec::parse("boxes=" + csv.string());
  rows.clear();
  Classifier(model, opt).run(inputs, [&](const VideoResult& r) { rows.push_back(r); });
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0].ok()) << rows[0].error;
  EXPECT_EQ(rows[0].crop.x, 500);
  EXPECT_EQ(rows[0].crop.height, 220);
  EXPECT_FALSE(rows[1].ok());
  EXPECT_NE(rows[1].error.find("no crop box for this video in " + csv.string()), std::string::npos)
      << rows[1].error;
  std::ofstream(dir / "bad.csv") << "x.mp4,1,2,3\n";
  EXPECT_THROW(CropSpec::parse("boxes=" + (dir / "bad.csv").string()), Error);
}

}  // namespace
}  // namespace fervid::test
