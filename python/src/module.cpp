// fervid's Python extension (_fervid): the public C++ API (fervid/fervid.h) and eval's scoring
// (scoring/dataset.h, scoring/metrics.h) as a few objects the package python/fervid wraps. Heavy
// calls release the GIL; a classify run goes on a thread of its own and hands its results over
// through a bounded queue (Stream), so that Python iterates over them as they become final, Ctrl-C
// stops the run, and memory stays bounded however many videos there are.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

#include "dataset.h"
#include "fervid/faces.h"
#include "fervid/fervid.h"
#include "fervid/live.h"
#include "fervid/output_file.h"
#include "metrics.h"

namespace py = pybind11;

namespace fervid::python {

namespace {

// ---- Errors: each kind of fervid::Error raises its class of fervid._errors -----------------

void translate_errors(std::exception_ptr p) {
  if (!p) return;
  auto raise = [](const char* name, const Error& e) {
    py::object cls = py::module_::import("fervid._errors").attr(name);
    PyErr_SetString(cls.ptr(), e.words(Wording::Python).c_str());
  };
  try {
    std::rethrow_exception(p);
  } catch (const Cancelled&) {
    PyErr_SetString(PyExc_KeyboardInterrupt, "the run was stopped");
  } catch (const WeightsError& e) {
    raise("WeightsError", e);
  } catch (const InputError& e) {
    raise("InputError", e);
  } catch (const OptionError& e) {
    raise("OptionError", e);
  } catch (const DeviceError& e) {
    raise("DeviceError", e);
  } catch (const Error& e) {
    raise("Error", e);
  }
}

// ---- Paths: any bytes a file system allows ---------------------------------------------------

// A path from Python (str or bytes) as the file system's bytes: a str that holds undecodable
// bytes as surrogates (os.listdir's, os.fsdecode's) becomes those bytes again.
std::string fs_path(const py::handle& p) {
  if (py::isinstance<py::bytes>(p)) return p.cast<std::string>();
  py::object bytes = py::reinterpret_steal<py::object>(PyUnicode_EncodeFSDefault(p.ptr()));
  if (!bytes) throw py::error_already_set();
  return bytes.cast<std::string>();
}

// A path to Python as os.fsdecode gives it (bytes that are not UTF-8 as surrogates).
py::str fs_str(const std::string& path) {
  PyObject* s = PyUnicode_DecodeFSDefaultAndSize(path.data(), Py_ssize_t(path.size()));
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

// Each frame's crop (x, y, w, h) and whether crop face found none, as d["crops"], d["no_face"].
void add_crops(py::dict& d, const std::vector<CropRect>& rects, const std::vector<uint8_t>& none) {
  const size_t n = rects.size();
  py::array_t<int32_t> crops({n, size_t(4)});
  py::array_t<bool> no_face(n);
  for (size_t i = 0; i < n; ++i) {
    const CropRect& r = rects[i];
    const int32_t xywh[4] = {r.x, r.y, r.width, r.height};
    std::copy(xywh, xywh + 4, crops.mutable_data() + 4 * i);
    no_face.mutable_data()[i] = none[i] != 0;
  }
  d["crops"] = crops;
  d["no_face"] = no_face;
}

// ---- Frames from numpy ----------------------------------------------------------------------

// An 8-bit RGB image [H, W, 3] whose pixels and channels are packed (rows may be strided).
ImageView view_of(const py::array& a, const std::string& what) {
  if (a.dtype().kind() != 'u' || a.itemsize() != 1 || a.ndim() != 3 || a.shape(2) != 3 ||
      a.strides(2) != 1 || a.strides(1) != 3 || a.shape(0) < 1 || a.shape(1) < 1) {
    std::string shape;
    for (py::ssize_t i = 0; i < a.ndim(); ++i)
      shape += (i ? ", " : "") + std::to_string(a.shape(i));
    fail_input(what + ": expected an 8-bit RGB image of shape [H, W, 3] with packed pixels, got " +
               std::string(py::str(a.dtype())) + " [" + shape + "]");
  }
  return {static_cast<const uint8_t*>(a.data()), int(a.shape(1)), int(a.shape(0)),
          int(a.strides(0))};
}

// Keeps Python objects alive from C++ (a frame list may outlive the call that made it); let go
// with the GIL held.
std::shared_ptr<const void> hold(py::object o) {
  return std::shared_ptr<const void>(new py::object(std::move(o)), [](const void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<const py::object*>(p);
  });
}

// The views of numpy arrays the caller keeps alive (`arrays` itself, with hold()).
std::vector<ImageView> views_of(const py::list& arrays) {
  std::vector<ImageView> views;
  for (size_t i = 0; i < arrays.size(); ++i) {
    const std::string what = "frame " + std::to_string(i);
    if (!py::isinstance<py::array>(arrays[i])) fail_input(what + ": expected a numpy array");
    views.push_back(view_of(arrays[i].cast<py::array>(), what));
  }
  return views;
}

// ---- Results to Python ----------------------------------------------------------------------

template <typename T>
py::array_t<T> array_2d(const std::vector<FrameResult>& rows, std::vector<T> FrameResult::*field,
                        size_t classes) {
  py::array_t<T> a({rows.size(), classes});
  auto m = a.template mutable_unchecked<2>();
  for (size_t f = 0; f < rows.size(); ++f)
    for (size_t c = 0; c < classes; ++c) m(f, c) = (rows[f].*field)[c];
  return a;
}

// What a run's per-frame rows carry: none (only the video's), or the frames, with their logits
// and (--crop face) the track id of each frame's face.
struct RowFields {
  bool rows = false, logits = false, tracks = false;
  static RowFields of(const ClassifyOptions& o) {
    return {o.keep_frames, o.keep_logits, o.crop.mode == CropSpec::Mode::Face};
  }
};

py::dict frame_rows(const std::vector<FrameResult>& rows, size_t classes, RowFields fields) {
  const size_t n = rows.size();
  py::array_t<int64_t> frame(n);
  py::array_t<double> time(n);
  py::array_t<int32_t> label(n), track(n);
  py::array_t<float> angle(n);
  for (size_t f = 0; f < n; ++f) {
    frame.mutable_at(f) = rows[f].frame_index;
    time.mutable_at(f) = rows[f].time_s;
    label.mutable_at(f) = rows[f].label;
    track.mutable_at(f) = rows[f].track;
    angle.mutable_at(f) = float(crop_degrees(rows[f].crop.angle));
  }
  py::dict d;
  d["frame"] = frame;
  d["time_s"] = time;
  d["label"] = label;
  d["probs"] = array_2d(rows, &FrameResult::probs, classes);
  d["logits"] =
      fields.logits ? py::object(array_2d(rows, &FrameResult::logits, classes)) : py::none();
  d["track"] = fields.tracks ? py::object(track) : py::none();
  d["crop_angle"] = fields.tracks ? py::object(angle) : py::none();
  return d;
}

py::dict video_dict(const VideoResult& r, size_t classes, RowFields fields) {
  py::dict d;
  d["path"] = fs_str(r.path);
  d["frames"] = r.frames;
  d["label"] = r.label;
  d["vote"] = vote_name(r.vote);
  d["counts"] = r.counts;
  d["mean_probs"] = r.mean_probs;
  d["error"] = r.error;
  d["warning"] = r.warning;
  d["crop"] = py::make_tuple(r.crop.x, r.crop.y, r.crop.width, r.crop.height);
  // crop "face": the face track cropped on most frames (None: no face) and the tracks' count.
  d["main_track"] =
      fields.tracks && r.main_track > 0 ? py::object(py::int_(r.main_track)) : py::none();
  d["face_tracks"] = fields.tracks ? py::object(py::int_(r.face_tracks)) : py::none();
  d["rows"] =
      fields.rows && r.ok() ? py::object(frame_rows(r.frame_rows, classes, fields)) : py::none();
  return d;
}

// ---- The engine -----------------------------------------------------------------------------

// The C++ engine and whether a run is using it; shared with the streams of its runs.
struct Holder {
  std::unique_ptr<Engine> engine;
  std::mutex mu;
  bool running = false;
};

Engine& engine_of(Holder& h) {
  if (!h.engine) fail_option("the engine is closed");
  return *h.engine;
}

// What a run's thread hands the Python thread: at most `capacity` items wait. The run push()es
// (waiting while the queue is full, unless `stopping` says the run is being stopped: then the
// item is dropped) and finish()es with its error, if any; the Python thread take()s, waiting
// with the GIL released and checking Python's signals every 0.1 s.
template <class T>
class Handoff {
 public:
  explicit Handoff(size_t capacity) : capacity_(capacity) {}
  void push(T item, const std::function<bool()>& stopping) {
    std::unique_lock lock(mu_);
    has_room_.wait(lock, [&] { return items_.size() < capacity_ || stopping(); });
    if (items_.size() >= capacity_ || stopping()) return;
    items_.push_back(std::move(item));
    has_item_.notify_one();
  }
  // A waiting push() looks at `stopping` again. The lock taken first: a push() that saw
  // `stopping` false is then either waiting (and woken) or has not read it yet; without it the
  // notice could fall between its read and its wait, and a run stopped with a full queue would
  // wait for ever.
  void wake() {
    { std::lock_guard lock(mu_); }
    has_room_.notify_all();
  }
  void finish(std::exception_ptr error) {
    std::lock_guard lock(mu_);
    error_ = std::move(error);
    done_ = true;
    has_item_.notify_all();
  }
  // The next item; nullopt at the end (the run's error, if any, thrown) or on a Python signal
  // (error_already_set thrown, after `on_end`); `on_end` runs before either is thrown.
  template <class OnEnd>
  T take(OnEnd&& on_end) {
    using namespace std::chrono_literals;
    for (;;) {
      std::optional<T> item;
      bool finished = false;
      {
        py::gil_scoped_release nogil;
        std::unique_lock lock(mu_);
        has_item_.wait_for(lock, 100ms, [&] { return !items_.empty() || done_; });
        if (!items_.empty()) {
          item = std::move(items_.front());
          items_.pop_front();
          has_room_.notify_one();
        } else {
          finished = done_;
        }
      }
      if (item) return std::move(*item);
      if (finished) {
        on_end();
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
        throw py::stop_iteration();
      }
      if (PyErr_CheckSignals() != 0) {
        on_end();
        throw py::error_already_set();
      }
    }
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable has_item_, has_room_;
  std::deque<T> items_;
  bool done_ = false;
  std::exception_ptr error_;
};

// Marks the engine in use by one run; fails when another run has it.
void claim(Holder& holder) {
  std::lock_guard lock(holder.mu);
  engine_of(holder);
  if (holder.running) fail_option("the engine is already classifying (one run at a time)");
  holder.running = true;
}

void release(Holder& holder) {
  std::lock_guard lock(holder.mu);
  holder.running = false;
}

// One classify run on a thread of its own: results (and the run's notices) go through a queue
// of at most `capacity` items, taken by next() on the Python thread.
class Stream {
 public:
  struct Item {
    bool notice = false;
    std::string text;  // a notice
    VideoResult result;
    Progress progress;
  };

  Stream(std::shared_ptr<Holder> holder, std::vector<InputItem> inputs, ClassifyOptions options,
         size_t capacity, const std::vector<std::string>& notices)
      : holder_(std::move(holder)),
        inputs_(std::move(inputs)),
        options_(std::move(options)),
        queue_(capacity + notices.size()) {
    for (const std::string& line : notices) queue_.push({true, line, {}, {}}, [] { return false; });
    check_classify_options(options_, engine_of(*holder_).max_batch());
    claim(*holder_);
    classes_ = holder_->engine->spec().classes.size();
    worker_ = std::thread([this] { work(); });
  }
  ~Stream() { close(); }

  size_t total() const { return inputs_.size(); }
  const std::vector<InputItem>& inputs() const { return inputs_; }

  // The next item: ("notice", text) or ("video", result dict, progress tuple); StopIteration at
  // the end; the run's error; KeyboardInterrupt (and the run stopped) on Ctrl-C.
  py::object next() {
    return to_python(queue_.take([this] { close(); }));
  }

  // Stops the run if it is still going and waits for its thread.
  void close() {
    stop_.request_stop();
    queue_.wake();
    if (worker_.joinable()) {
      py::gil_scoped_release nogil;
      worker_.join();
    }
  }

 private:
  void work() {
    std::exception_ptr error;
    const auto stopping = [this] { return stop_.stop_requested(); };
    try {
      holder_->engine->classify(
          inputs_, options_,
          [&](const VideoResult& r, const Progress& p) {
            queue_.push({false, "", r, p}, stopping);
          },
          [&](const std::string& line) {
            queue_.push({true, line, {}, {}}, stopping);
          },
          stop_.get_token());
    } catch (const Cancelled&) {
    } catch (...) {
      error = std::current_exception();
    }
    release(*holder_);
    queue_.finish(error);
  }

  py::object to_python(const Item& item) const {
    if (item.notice) return py::make_tuple("notice", item.text);
    const Progress& p = item.progress;
    return py::make_tuple("video", video_dict(item.result, classes_, RowFields::of(options_)),
                          py::make_tuple(p.videos_done, p.videos_total, p.frames, p.seconds));
  }

  std::shared_ptr<Holder> holder_;
  std::vector<InputItem> inputs_;
  ClassifyOptions options_;
  size_t classes_ = 0;
  Handoff<Item> queue_;
  std::stop_source stop_;
  std::thread worker_;
};

// One watch() (fervid/live.h) on a thread of its own: each event as its JSON line, through a
// queue taken by next() on the Python thread. A consumer that falls behind holds the watcher up
// (at most kCapacity events wait); close() stops the sources and waits for the thread.
class LiveStream {
 public:
  LiveStream(std::shared_ptr<Holder> holder, std::vector<std::string> sources, LiveOptions o)
      : holder_(std::move(holder)), sources_(std::move(sources)), options_(std::move(o)) {
    claim(*holder_);
    worker_ = std::thread([this] { work(); });
  }
  ~LiveStream() { close(); }

  // The next event's JSON line; StopIteration when every source has ended; the watch's error;
  // KeyboardInterrupt (and the watch stopped) on Ctrl-C.
  std::string next() {
    return queue_.take([this] { close(); });
  }

  // Stops the sources (each source's window in flight and End still come, while the queue has
  // room) and waits for the thread.
  void close() {
    stop_ = true;
    queue_.wake();
    if (worker_.joinable()) {
      py::gil_scoped_release nogil;
      worker_.join();
    }
  }

 private:
  static constexpr size_t kCapacity = 4096;
  void work() {
    std::exception_ptr error;
    try {
      Engine& engine = *holder_->engine;
      const std::vector<std::string> classes = engine.spec().classes;
      watch(
          engine, sources_, options_,
          [&](const LiveEvent& e) {
            queue_.push(live_event_json(e, classes), [this] { return stop_.load(); });
          },
          stop_);
    } catch (...) {
      error = std::current_exception();
    }
    release(*holder_);
    queue_.finish(error);
  }

  std::shared_ptr<Holder> holder_;
  std::vector<std::string> sources_;
  LiveOptions options_;
  Handoff<std::string> queue_{kCapacity};
  std::atomic<bool> stop_{false};
  std::thread worker_;
};

// ---- Faces: fervid faces as dicts ------------------------------------------------------------

py::dict face_row(const FaceRow& r) {
  py::dict d;
  d["frame"] = r.frame_index;
  d["time_s"] = r.time_s;
  d["track"] = r.track;  // 0: the frame has no face
  if (r.track == 0) return d;
  d["box"] = py::make_tuple(r.x, r.y, r.w, r.h);
  d["score"] = r.score;
  d["keypoints"] = r.keypoints;  // empty where the track coasted
  d["label"] = r.label;          // -1: not classified
  d["probs"] = r.probs;
  return d;
}

py::dict track_vote(const TrackVote& t) {
  py::dict d;
  d["track"] = t.track;
  d["first_frame"] = t.first_frame;
  d["last_frame"] = t.last_frame;
  d["first_s"] = t.first_s;
  d["last_s"] = t.last_s;
  d["frames"] = t.frames;
  d["classified"] = t.classified;
  d["label"] = t.label;
  d["counts"] = t.counts;
  d["mean_probs"] = t.mean_probs;
  return d;
}

// Every face of every sampled frame of `inputs` (paths), tracked; with `engine`, classified and
// voted. Options: detector ("": the default), stride, max_frames, faces, margin, vote ("": the
// card's).
py::list track_faces(const py::list& inputs, const py::dict& o, Engine* engine) {
  std::vector<std::string> paths;
  for (const py::handle& in : inputs) paths.push_back(fs_path(in));
  FacesOptions fo;
  fo.sampling.stride = o["stride"].cast<int>();
  fo.sampling.max_frames = o["max_frames"].cast<int>();
  if (fo.sampling.stride < 1)
    fail_option("{{stride}} " + std::to_string(fo.sampling.stride) + ": must be at least 1");
  if (fo.sampling.max_frames < 0)
    fail_option("{{max_frames}} " + std::to_string(fo.sampling.max_frames) + ": must be 0 or more");
  fo.choice = parse_face_choice(o["faces"].cast<std::string>());
  // margin None: the card's (ModelSpec::face_margin), 0.25 without an engine.
  fo.margin = o["margin"].is_none()
                  ? (engine ? engine->spec().face_margin : ModelSpec::kDefaultFaceMargin)
                  : o["margin"].cast<double>();
  if (!(fo.margin >= 0 && fo.margin <= ModelSpec::kMaxFaceMargin))
    fail_option("{{margin}}: must lie in 0..2");
  const std::string vote = o["vote"].cast<std::string>();
  if (engine) fo.vote = vote.empty() ? engine->spec().vote : parse_vote(vote);
  // The detector runs where the engine does (on the GPU in fp32), on the CPU without one.
  if (engine && engine->backend_name() == "cuda") fo.detector_device = DeviceChoice::Cuda;
  std::vector<VideoFaces> out;
  {
    py::gil_scoped_release nogil;
    const std::vector<InputItem> items = expand_inputs(paths);
    FaceTracking tracking(o["detector"].cast<std::string>(), fo);
    for (const InputItem& in : items) out.push_back(tracking.run(in, engine));
  }
  py::list videos;
  for (const VideoFaces& v : out) {
    py::dict d;
    d["video"] = fs_str(v.path);
    d["error"] = v.error;
    d["width"] = v.width;
    d["height"] = v.height;
    d["frames"] = v.frames;
    py::list rows, tracks;
    for (const FaceRow& r : v.rows) rows.append(face_row(r));
    for (const TrackVote& t : v.track_votes) tracks.append(track_vote(t));
    d["rows"] = rows;
    d["tracks"] = tracks;
    d["main"] = track_vote(v.video);
    videos.append(d);
  }
  return videos;
}

class PyEngine {
 public:
  PyEngine(const std::string& weights, const std::string& card, const std::string& device,
           const std::string& precision, int threads, const std::string& conv_impl,
           bool cuda_graphs, int batch, py::object notify, bool explain)
      : holder_(std::make_shared<Holder>()) {
    OptionValues v;
    v.device = device;
    v.precision = precision;
    v.threads = threads;
    v.conv_impl = conv_impl;
    v.cuda_graphs = cuda_graphs;
    v.batch = batch;
    v.explain = explain;
    EngineOptions o;
    plan_of(v).fill(o);
    o.wording = Wording::Python;
    // Shared: the engine keeps its sink (what it says after this constructor is dropped; a run's
    // notices come through the run's own sink).
    auto said = std::make_shared<std::vector<std::string>>();
    o.notify = [said](const std::string& line) { said->push_back(line); };
    std::vector<std::string>& notices = *said;
    {
      py::gil_scoped_release nogil;
      Weights w = load_weights(weights, card);
      untrained_ = w.untrained();
      if (const std::string warn = w.classes_warning(); !warn.empty()) notices.push_back(warn);
      holder_->engine = std::make_unique<Engine>(std::move(w), o);
    }
    for (const std::string& line : notices)
      if (!notify.is_none()) notify(line);
  }

  Engine& engine() const { return engine_of(*holder_); }

  py::dict info() const {
    const Engine& e = engine();
    const ModelSpec& s = e.spec();
    py::dict d;
    d["model"] = s.name;
    d["classes"] = s.classes;
    d["input_size"] = s.input_size;
    d["head"] = head_name(s.head);
    d["crop"] = s.crop;
    d["vote"] = vote_name(s.vote);
    d["backend"] = e.backend_name();
    d["device_name"] = e.device_name();
    d["precision"] = precision_name(e.precision());
    d["batch"] = e.max_batch();
    d["untrained"] = untrained_;
    return d;
  }

  // Inputs: path strings (expanded: a folder becomes its videos and image folders) and
  // (name, [arrays], fps) tuples of frames in memory.
  // Engine.watch(): the options dict of fervid/__init__.py's watch().
  std::unique_ptr<LiveStream> watch(const std::vector<std::string>& sources, const py::dict& o) {
    LiveOptions lo;
    lo.window_s = o["window_s"].cast<double>();
    lo.window_frames = o["window_frames"].cast<int>();
    lo.hop_s = o["hop"].cast<double>();
    lo.frames = o["frames"].cast<bool>();
    lo.stall_s = o["stall"].cast<double>();
    lo.give_up_s = o["give_up"].cast<double>();
    lo.source_format = o["source_format"].is_none() ? "" : o["source_format"].cast<std::string>();
    for (const auto& [k, v] : o["source_options"].cast<py::dict>())
      lo.source_options.emplace_back(py::str(k).cast<std::string>(),
                                     py::str(v).cast<std::string>());
    const ModelSpec& spec = engine_of(*holder_).spec();
    const std::string crop = o["crop"].is_none() ? spec.crop : o["crop"].cast<std::string>();
    lo.crop = CropSpec::parse(crop);
    if (lo.crop.mode == CropSpec::Mode::Haar || lo.crop.mode == CropSpec::Mode::Boxes)
      fail_option("{{crop}} " + crop + ": watch() takes full, center, box=x,y,w,h or face");
    lo.vote = o["vote"].is_none() ? spec.vote : parse_vote(o["vote"].cast<std::string>());
    return std::make_unique<LiveStream>(holder_, sources, std::move(lo));
  }

  std::unique_ptr<Stream> run(const py::list& inputs, const py::dict& o, size_t capacity) {
    std::vector<InputItem> items;
    WalkNotes walked;
    for (const py::handle& in : inputs) {
      if (py::isinstance<py::str>(in)) {
        for (InputItem& item : expand_inputs({fs_path(in)}, &walked)) items.push_back(item);
        continue;
      }
      const py::tuple t = in.cast<py::tuple>();
      const py::list arrays = t[1].cast<py::list>();
      items.push_back(frames_input(fs_path(t[0]), {views_of(arrays), hold(arrays)}));
    }
    return std::make_unique<Stream>(holder_, std::move(items), options(o), capacity,
                                    walked.lines());
  }

  // crop "": the card's.
  py::dict classify_frames(const py::list& arrays, const std::string& crop) {
    const std::vector<ImageView> views = views_of(arrays);
    const CropSpec c = crop.empty() ? engine().default_options().crop : CropSpec::parse(crop);
    FrameScores s;
    {
      std::lock_guard lock(holder_->mu);
      if (holder_->running) fail_option("the engine is already classifying (one run at a time)");
      Engine& e = engine();
      py::gil_scoped_release nogil;
      s = e.classify_frames(views, c);
    }
    const size_t n = size_t(s.frames), k = size_t(s.classes);
    py::array_t<int32_t> labels(n);
    std::copy(s.labels.begin(), s.labels.end(), labels.mutable_data());
    py::array_t<float> probs({n, k}), logits({n, k});
    std::copy(s.probs.begin(), s.probs.end(), probs.mutable_data());
    std::copy(s.logits.begin(), s.logits.end(), logits.mutable_data());
    py::dict d;
    d["labels"] = labels;
    d["probs"] = probs;
    d["logits"] = logits;
    add_crops(d, s.crops, s.no_face);
    return d;
  }

  // Engine::network_inputs of one input file: the arrays the network reads for its frames.
  py::dict network_inputs(const py::handle& path, int stride, int max_frames,
                          const std::string& crop) {
    const std::string p = fs_path(path);
    SamplingOptions sampling;
    sampling.stride = stride;
    sampling.max_frames = max_frames;
    if (stride < 1) fail_option("{{stride}} " + std::to_string(stride) + ": must be at least 1");
    if (max_frames < 0) fail_option("{{max_frames}} must be 0 (all) or more");
    const CropSpec c = crop.empty() ? engine().default_options().crop : CropSpec::parse(crop);
    NetworkInputs in;
    {
      std::lock_guard lock(holder_->mu);
      if (holder_->running) fail_option("the engine is already classifying (one run at a time)");
      Engine& e = engine();
      py::gil_scoped_release nogil;
      const std::vector<InputItem> items = expand_inputs({p});
      if (items.size() != 1)
        fail_input(p + ": " + std::to_string(items.size()) + " inputs, not one video or image");
      in = e.network_inputs(items[0], sampling, c);
    }
    const size_t n = size_t(in.frames), S = size_t(in.size);
    py::array_t<float> values({n, S, S, size_t(3)});
    std::copy(in.values.begin(), in.values.end(), values.mutable_data());
    py::array_t<int64_t> index(n);
    std::copy(in.index.begin(), in.index.end(), index.mutable_data());
    py::array_t<double> time_s(n);
    std::copy(in.time_s.begin(), in.time_s.end(), time_s.mutable_data());
    py::dict d;
    d["inputs"] = values;
    d["index"] = index;
    d["time_s"] = time_s;
    add_crops(d, in.crops, in.no_face);
    return d;
  }

  // fervid faces (fervid/faces.h) with this engine classifying each face: one dict per input.
  py::list faces(const py::list& inputs, const py::dict& o) {
    std::lock_guard lock(holder_->mu);
    if (holder_->running) fail_option("the engine is already classifying (one run at a time)");
    return track_faces(inputs, o, &engine());
  }

  // Grad-CAM of frames in memory (Engine::explain_frames): classes[i] < 0 = the frame's top class.
  py::dict gradcam(const py::list& arrays, const std::string& crop,
                   const std::vector<int>& classes) {
    const std::vector<ImageView> views = views_of(arrays);
    const CropSpec c = CropSpec::parse(crop);
    if (classes.size() != views.size()) fail_option("gradcam: one class per frame is needed");
    std::vector<CropRect> crops;
    for (const ImageView& v : views) crops.push_back(c.rect_for(v.width, v.height));
    std::vector<FrameExplanation> ex;
    {
      std::lock_guard lock(holder_->mu);
      if (holder_->running) fail_option("the engine is already classifying (one run at a time)");
      Engine& e = engine();
      py::gil_scoped_release nogil;
      ex = e.explain_frames(views, crops, classes);
    }
    const size_t n = ex.size(), s = n ? size_t(ex[0].map_size) : 0, k = n ? ex[0].probs.size() : 0;
    py::array_t<float> maps({n, s, s}), probs({n, k});
    py::array_t<int32_t> cls(n);
    for (size_t i = 0; i < n; ++i) {
      std::copy(ex[i].map.begin(), ex[i].map.end(), maps.mutable_data() + i * s * s);
      std::copy(ex[i].probs.begin(), ex[i].probs.end(), probs.mutable_data() + i * k);
      cls.mutable_data()[i] = ex[i].cls;
    }
    py::dict d;
    d["maps"] = maps;
    d["classes"] = cls;
    d["probs"] = probs;
    return d;
  }

  void close() {
    std::unique_ptr<Engine> engine;
    {
      std::lock_guard lock(holder_->mu);
      if (holder_->running) fail_option("close the engine's running classify first");
      engine = std::move(holder_->engine);
    }
    py::gil_scoped_release nogil;
    engine.reset();
  }

 private:
  // A run's keywords, typed by plan_of as the CLI's flags are.
  ClassifyOptions options(const py::dict& o) const {
    OptionValues v;
    v.batch = o["batch"].cast<int>();
    v.stride = o["stride"].cast<int>();
    v.max_frames = o["max_frames"].cast<int>();
    v.fps = o["fps"].cast<double>();
    if (!o["crop"].is_none()) v.crop = o["crop"].cast<std::string>();
    if (!o["vote"].is_none()) v.vote = o["vote"].cast<std::string>();
    v.keep_frames = o["frames"].cast<bool>();
    v.keep_logits = o["logits"].cast<bool>();
    v.decoder = o["decoder"].cast<std::string>();
    v.decode_threads = o["decode_threads"].cast<int>();
    v.stage_streams = o["stage_streams"].cast<bool>();
    return plan_of(v).for_card(engine().spec());
  }

  std::shared_ptr<Holder> holder_;
  bool untrained_ = false;
};

// ---- eval's scoring -------------------------------------------------------------------------

// (path, truth, actor) of each path by RAVDESS names or a labels CSV, as `fervid eval` labels
// them (audio-only clips are left out).
// fervid.calibrate: calibrate_weights, the result as a dict.
py::dict calibrate(const py::list& inputs, const std::string& weights, const std::string& out,
                   const py::dict& o) {
  std::vector<std::string> paths;
  for (const py::handle& in : inputs) paths.push_back(fs_path(in));
  CalibrateOptions opt;
  opt.card = o["card"].cast<std::string>();
  opt.crop = o["crop"].cast<std::string>();
  opt.sampling.stride = o["stride"].cast<int>();
  opt.frames = o["frames"].cast<int64_t>();
  opt.threads = o["threads"].cast<int>();
  opt.notify = [](const std::string&) {};
  Engine::Int8Calibration cal;
  {
    py::gil_scoped_release release;
    cal = calibrate_weights(weights, expand_inputs(paths), out, opt);
  }
  py::dict d;
  d["scales"] = cal.scales;
  d["frames"] = cal.frames;
  d["skipped"] = cal.skipped;
  return d;
}

py::list label_paths(const py::list& paths, const std::vector<std::string>& classes,
                     const std::string& labels_csv) {
  std::vector<InputItem> items;
  for (const py::handle& p : paths) items.push_back({fs_path(p), InputKind::Video});
  py::list out;
  for (const scoring::LabelledInput& l :
       scoring::label_inputs(items, classes, labels_csv, {}, nullptr))
    out.append(py::make_tuple(fs_str(l.item.path), l.truth, l.actor));
  return out;
}

// The metrics of `fervid eval` (docs/metrics.md) as its --summary JSON text, from rows of
// (path, truth, predicted or -1, actor, counts, error); the confusion heat map on request.
std::string score(const py::list& rows, const std::vector<std::string>& classes,
                  const std::string& confusion_png, const std::string& title) {
  std::vector<scoring::EvalRow> eval;
  for (const py::handle& h : rows) {
    const py::tuple t = h.cast<py::tuple>();
    scoring::EvalRow r;
    r.path = fs_path(t[0]);
    r.truth = t[1].cast<int>();
    r.predicted = t[2].cast<int>();
    r.actor = t[3].cast<int>();
    r.counts = t[4].cast<std::vector<int64_t>>();
    r.error = t[5].cast<std::string>();
    eval.push_back(std::move(r));
  }
  const scoring::EvalMetrics m = scoring::compute_metrics(eval, classes);
  if (!confusion_png.empty()) {
    char fallback[96];
    std::snprintf(fallback, sizeof(fallback), "video accuracy %.1f %%, %d videos",
                  100 * m.video_accuracy, m.videos);
    scoring::write_confusion_png(m, OutputTarget::at(confusion_png, "confusion_png"),
                                 title.empty() ? fallback : title);
  }
  return scoring::metrics_json(m).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

}  // namespace fervid::python

PYBIND11_MODULE(_fervid, m) {
  using namespace fervid;
  using namespace fervid::python;
  m.doc() = "fervid's C++ engine; use the fervid package, not this module.";
  py::register_exception_translator(translate_errors);

  py::class_<Stream>(m, "Stream")
      .def("__next__", &Stream::next)
      .def("close", &Stream::close)
      .def_property_readonly("total", &Stream::total)
      .def_property_readonly("paths", [](const Stream& s) {
        py::list paths;
        for (const InputItem& i : s.inputs()) paths.append(fs_str(i.path));
        return paths;
      });

  py::class_<LiveStream>(m, "LiveStream")
      .def("__next__", &LiveStream::next)
      .def("close", &LiveStream::close);

  py::class_<PyEngine>(m, "Engine")
      .def(py::init<const std::string&, const std::string&, const std::string&, const std::string&,
                    int, const std::string&, bool, int, py::object, bool>(),
           py::arg("weights"), py::arg("card"), py::arg("device"), py::arg("precision"),
           py::arg("threads"), py::arg("conv_impl"), py::arg("cuda_graphs"), py::arg("batch"),
           py::arg("notify"), py::arg("explain") = false)
      .def("info", &PyEngine::info)
      .def("run", &PyEngine::run, py::arg("inputs"), py::arg("options"), py::arg("capacity"))
      .def("classify_frames", &PyEngine::classify_frames, py::arg("frames"), py::arg("crop"))
      .def("gradcam", &PyEngine::gradcam, py::arg("frames"), py::arg("crop"), py::arg("classes"))
      .def("faces", &PyEngine::faces, py::arg("inputs"), py::arg("options"))
      .def("network_inputs", &PyEngine::network_inputs, py::arg("path"), py::arg("stride"),
           py::arg("max_frames"), py::arg("crop"))
      .def("watch", &PyEngine::watch, py::arg("sources"), py::arg("options"))
      .def("close", &PyEngine::close);

  m.def(
      "faces",
      [](const py::list& inputs, const py::dict& o) { return track_faces(inputs, o, nullptr); },
      py::arg("inputs"), py::arg("options"));
  m.def("calibrate", &calibrate, py::arg("inputs"), py::arg("weights"), py::arg("out"),
        py::arg("options"));
  m.def("label_paths", &label_paths, py::arg("paths"), py::arg("classes"), py::arg("labels_csv"));
  m.def("score", &score, py::arg("rows"), py::arg("classes"), py::arg("confusion_png"),
        py::arg("title"));
  m.def("build_info", [] {
    const BuildInfo b = build_info();
    return py::make_tuple(b.version, b.cuda);
  });
}
