// FaceFinder through OpenCV's cascade classifier (engine/src/face.h).
#include <algorithm>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "face.h"
#include "fervid/error.h"

namespace fervid {

namespace {

// Frames are searched at this width at most: a RAVDESS face (~300 px of 1280) stays far above
// the cascade's 24x24 window, and the search costs ~6x less than at 720p.
constexpr int kSearchWidth = 640;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

struct FaceFinder::Impl {
  cv::CascadeClassifier cascade;
};

FaceFinder::FaceFinder(const std::string& cascade) : impl_(std::make_unique<Impl>()) {
  std::string path = cascade;
  if (path.empty())
    if (const char* env = std::getenv("FERVID_FACE_CASCADE")) path = env;
  if (path.empty()) path = FERVID_FACE_CASCADE;
  bool loaded = false;
  try {
    loaded = impl_->cascade.load(path);
  } catch (const cv::Exception&) {
    loaded = false;
  }
  if (!loaded || impl_->cascade.empty())
    fail_option("{{crop}} haar: cannot load the face cascade " + path +
                " (Debian's opencv-data; or set FERVID_FACE_CASCADE)");
}

FaceFinder::~FaceFinder() = default;

std::vector<CropRect> FaceFinder::detect(const ImageView& frame) {
  const cv::Mat rgb(frame.height, frame.width, CV_8UC3, const_cast<uint8_t*>(frame.data),
                    size_t(frame.stride));
  cv::Mat gray;
  cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
  const double scale = frame.width > kSearchWidth ? double(kSearchWidth) / frame.width : 1.0;
  if (scale < 1.0) cv::resize(gray, gray, cv::Size(), scale, scale, cv::INTER_AREA);
  cv::equalizeHist(gray, gray);
  // Faces at least a tenth of the shorter side: a face to classify, not a face in a crowd.
  const int min_side = std::max(24, std::min(gray.cols, gray.rows) / 10);
  std::vector<cv::Rect> found;
  impl_->cascade.detectMultiScale(gray, found, 1.1, 5, 0, cv::Size(min_side, min_side));
  std::sort(found.begin(), found.end(),
            [](const cv::Rect& a, const cv::Rect& b) { return a.area() > b.area(); });
  std::vector<CropRect> faces;
  for (const cv::Rect& r : found)
    faces.push_back(
        {int(r.x / scale), int(r.y / scale), int(r.width / scale), int(r.height / scale)});
  return faces;
}

std::optional<CropRect> FaceFinder::video_box(std::span<const ImageView> frames, double margin,
                                              int* found) {
  std::vector<double> cx, cy, side;
  for (const ImageView& f : frames) {
    std::vector<CropRect> faces = detect(f);
    if (faces.empty()) continue;
    const CropRect& r = faces.front();
    cx.push_back(r.x + r.width / 2.0);
    cy.push_back(r.y + r.height / 2.0);
    side.push_back(std::max(r.width, r.height));
  }
  if (found) *found = int(cx.size());
  if (cx.empty()) return std::nullopt;
  const ImageView& f = frames.front();
  return square_inside(median(cx), median(cy), median(side) * (1.0 + 2.0 * margin), f.width,
                       f.height);
}

}  // namespace fervid
