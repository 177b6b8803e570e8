// fervid::watch (fervid/live.h): a reader thread per source keeps the source's newest decoded
// frame in a one-frame mailbox (a newer frame replaces one not yet taken: a drop, counted); the
// calling thread classifies what the mailboxes hold, together, keeps each source's window and
// hands the events over.
#include "fervid/live.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "fervid/fervid.h"
#include "fervid/inputs.h"
#include "run_clock.h"
#include "video_decode.h"

namespace fervid {
namespace {

constexpr double kFirstWait = 0.5, kLongestWait = 8.0;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Latencies of a whole stream without keeping each: buckets 1 % wide from 0.01 ms up.
class LatencyHistogram {
 public:
  void add(double ms) {
    const double v = std::max(ms, kLow);
    const size_t b = std::min(kBuckets - 1, size_t(std::log(v / kLow) / std::log(kStep)));
    ++counts_[b];
    ++n_;
    max_ = std::max(max_, ms);
  }
  LatencySummary summary() const {
    LatencySummary s;
    s.frames = n_;
    s.max_ms = max_;
    s.p50_ms = quantile(0.50);
    s.p99_ms = quantile(0.99);
    return s;
  }

 private:
  double quantile(double q) const {
    if (n_ == 0) return 0;
    const int64_t rank = std::max<int64_t>(1, int64_t(std::ceil(q * double(n_))));
    int64_t seen = 0;
    for (size_t b = 0; b < kBuckets; ++b)
      if ((seen += counts_[b]) >= rank) return std::min(max_, kLow * std::pow(kStep, b + 1));
    return max_;
  }
  static constexpr double kLow = 0.01, kStep = 1.01;
  static constexpr size_t kBuckets = 2000;  // up to ~4400 s
  std::vector<int64_t> counts_ = std::vector<int64_t>(kBuckets, 0);
  int64_t n_ = 0;
  double max_ = 0;
};

LatencySummary summarize(std::vector<double> ms) {
  LatencySummary s;
  s.frames = int64_t(ms.size());
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  const auto at = [&](double q) {
    return ms[size_t(std::max(0.0, std::ceil(q * double(ms.size())) - 1))];
  };
  s.p50_ms = at(0.50);
  s.p99_ms = at(0.99);
  s.max_ms = ms.back();
  return s;
}

// A reader's hand-over to the classifier: its newest frame and its events, in order.
struct Mailbox {
  std::optional<Frame> frame;
  Clock::time_point arrived_at;
  std::deque<LiveEvent> events;
  int64_t arrived = 0, dropped = 0;
  bool ended = false;
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Mailbox> boxes;
  Clock::time_point t0 = Clock::now();
};

class Reader {
 public:
  Reader(Shared& sh, int source, std::string path, const LiveOptions& o,
         const std::atomic<bool>& stop)
      : sh_(sh), source_(source), path_(std::move(path)), o_(o), stop_(stop) {}
  void run();

 private:
  LiveEvent event(LiveEvent::Kind kind) const {
    LiveEvent e;
    e.kind = kind;
    e.source = source_;
    e.name = path_;
    e.wall_s = seconds_since(sh_.t0);
    return e;
  }
  void post(LiveEvent e, bool end = false) {
    std::lock_guard lock(sh_.mu);
    Mailbox& box = sh_.boxes[size_t(source_)];
    box.events.push_back(std::move(e));
    box.ended = box.ended || end;
    sh_.cv.notify_all();
  }
  void post_frame(Frame&& f) {
    std::lock_guard lock(sh_.mu);
    Mailbox& box = sh_.boxes[size_t(source_)];
    if (box.frame) ++box.dropped;
    ++box.arrived;
    box.frame = std::move(f);
    box.arrived_at = Clock::now();
    sh_.cv.notify_all();
  }
  std::string read_once();
  bool wait(double seconds) const {  // false when stopped meanwhile
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
      if (stop_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return !stop_;
  }

  Shared& sh_;
  int source_;
  std::string path_;
  const LiveOptions& o_;
  const std::atomic<bool>& stop_;
  std::optional<Clock::time_point> lost_at_;
  bool opened_ = false;
};

// Opens the source and hands its frames over until it ends, fails or is stopped; the reason.
std::string Reader::read_once() {
  try {
    DecodeOptions d;
    d.stall_s = o_.stall_s;
    d.interrupt = &stop_;
    d.format_options = o_.source_options;
    d.input_format = o_.source_format;
    std::unique_ptr<FrameSource> src = open_live(path_, d);
    Frame f;
    bool first = true;
    while (!stop_ && src->next(f)) {
      if (first) {
        LiveEvent e = event(lost_at_ ? LiveEvent::Kind::Back : LiveEvent::Kind::Start);
        if (lost_at_) e.away_s = seconds_since(*lost_at_);
        if (lost_at_ || !opened_) post(std::move(e));
        lost_at_.reset();
        opened_ = true;
        first = false;
      }
      post_frame(std::move(f));
    }
    return "the stream ended";
  } catch (const std::exception& e) {
    return e.what();
  }
}

void Reader::run() {
  const bool network = is_url_input(path_);
  double wait_s = kFirstWait;
  std::string reason = "stopped";
  while (!stop_) {
    const std::string why = read_once();
    if (stop_) break;
    if (!network) {
      reason = why;
      break;
    }
    if (!lost_at_) {
      lost_at_ = Clock::now();
      wait_s = kFirstWait;
      LiveEvent e = event(LiveEvent::Kind::Lost);
      e.reason = why;
      post(std::move(e));
    }
    if (o_.give_up_s > 0 && seconds_since(*lost_at_) >= o_.give_up_s) {
      reason = "lost for " + std::to_string(int(o_.give_up_s)) + " s: " + why;
      break;
    }
    if (!wait(wait_s)) break;
    wait_s = std::min(wait_s * 2, kLongestWait);
  }
  LiveEvent e = event(LiveEvent::Kind::End);
  e.reason = stop_ ? "stopped" : reason;
  post(std::move(e), true);
}

// One source's sliding window and totals, on the classifier's thread.
struct Window {
  struct Entry {
    Clock::time_point at;
    double time_s = 0;
    int label = -1;
    std::vector<float> probs;
    double latency_ms = 0;
  };
  std::deque<Entry> entries;
  std::optional<Clock::time_point> next_hop, first_at;
  int64_t arrived_seen = 0, dropped_seen = 0, classified = 0;
  bool unreported = false;  // frames classified since the last window row
  LatencyHistogram latencies;
};

class Watcher {
 public:
  Watcher(Engine& engine, const std::vector<std::string>& sources, const LiveOptions& o,
          const LiveSink& sink, const std::atomic<bool>& stop)
      : engine_(engine),
        sources_(sources),
        o_(o),
        sink_(sink),
        stop_(stop),
        windows_(sources.size()) {
    sh_.boxes.resize(sources.size());
  }
  void run();

 private:
  struct Taken {
    int source;
    Frame frame;
    Clock::time_point at;
  };
  void classify(std::vector<Taken>& taken);
  void trim(Window& w) const;
  void emit_window(int source);
  void hops(Clock::time_point now);
  void deliver(std::deque<LiveEvent>& events);
  Clock::time_point next_wake(Clock::time_point now) const;
  void take(std::vector<Taken>& taken, std::deque<LiveEvent>& events);
  void step(std::vector<Taken>& taken, std::deque<LiveEvent>& events);

  Engine& engine_;
  const std::vector<std::string>& sources_;
  const LiveOptions& o_;
  const LiveSink& sink_;
  const std::atomic<bool>& stop_;
  std::atomic<bool> halt_{false};  // the readers' stop: `stop_`, or an error here
  Shared sh_;
  std::vector<Window> windows_;
  size_t ended_ = 0;
};

void Watcher::classify(std::vector<Taken>& taken) {
  std::vector<ImageView> views;
  for (const Taken& t : taken) views.push_back(t.frame.view());
  const FrameScores s = engine_.classify_frames(views, o_.crop);
  const auto now = Clock::now();
  for (size_t i = 0; i < taken.size(); ++i) {
    Window& w = windows_[size_t(taken[i].source)];
    Window::Entry e{taken[i].at,
                    taken[i].frame.time_s,
                    s.labels[i],
                    {s.probs.begin() + ptrdiff_t(i) * s.classes,
                     s.probs.begin() + ptrdiff_t(i + 1) * s.classes},
                    ms_between(taken[i].at, now)};
    w.latencies.add(e.latency_ms);
    ++w.classified;
    w.unreported = true;
    if (!w.first_at) w.first_at = taken[i].at;
    if (!w.next_hop)
      w.next_hop = taken[i].at + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(o_.hop_s));
    if (o_.frames) {
      LiveEvent f;
      f.kind = LiveEvent::Kind::Frame;
      f.source = taken[i].source;
      f.name = sources_[size_t(f.source)];
      f.wall_s = seconds_since(sh_.t0);
      f.frame_index = taken[i].frame.index;
      f.time_s = e.time_s;
      f.label = e.label;
      f.probs = e.probs;
      f.latency_ms = e.latency_ms;
      sink_(f);
    }
    w.entries.push_back(std::move(e));
  }
}

// Keeps the window's frames: the last window_frames, or those that arrived at most window_s
// before its newest frame (so that a window late by more than its span still holds its frames).
void Watcher::trim(Window& w) const {
  if (o_.window_frames > 0) {
    while (w.entries.size() > size_t(o_.window_frames)) w.entries.pop_front();
    return;
  }
  if (w.entries.empty()) return;
  const auto span =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.window_s));
  const Clock::time_point newest = w.entries.back().at;
  while (w.entries.front().at < newest - span) w.entries.pop_front();
}

// The vote of `source`'s window now (nothing when no frame was classified since the last one).
void Watcher::emit_window(int source) {
  Window& w = windows_[size_t(source)];
  trim(w);
  if (w.entries.empty() || !w.unreported) return;
  w.unreported = false;
  const int classes = int(engine_.spec().classes.size());
  LiveEvent e;
  e.kind = LiveEvent::Kind::Window;
  e.source = source;
  e.name = sources_[size_t(source)];
  e.wall_s = seconds_since(sh_.t0);
  e.votes.assign(size_t(classes), 0);
  std::vector<double> sums(size_t(classes), 0.0);
  std::vector<double> latencies;
  for (const Window::Entry& x : w.entries) {
    if (x.label >= 0) ++e.votes[size_t(x.label)];
    for (int c = 0; c < classes; ++c) sums[size_t(c)] += x.probs[size_t(c)];
    latencies.push_back(x.latency_ms);
  }
  e.frames = int(w.entries.size());
  e.from_s = w.entries.front().time_s;
  e.to_s = w.entries.back().time_s;
  e.label = vote_winner(e.votes.data(), sums.data(), classes, o_.vote);
  for (double v : sums) e.probs.push_back(float(v / e.frames));
  e.latency = summarize(std::move(latencies));
  {
    std::lock_guard lock(sh_.mu);
    const Mailbox& box = sh_.boxes[size_t(source)];
    e.arrived = box.arrived - w.arrived_seen;
    e.dropped = box.dropped - w.dropped_seen;
    w.arrived_seen = box.arrived;
    w.dropped_seen = box.dropped;
  }
  sink_(e);
}

void Watcher::hops(Clock::time_point now) {
  const auto hop =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.hop_s));
  for (size_t i = 0; i < windows_.size(); ++i) {
    Window& w = windows_[i];
    if (!w.next_hop || now < *w.next_hop) continue;
    emit_window(int(i));
    *w.next_hop += hop;
    if (*w.next_hop <= now) *w.next_hop = now + hop;  // fell behind: no burst of windows
  }
}

// Hands over the readers' events; before a source's Lost and End, its window in flight (and
// its totals with the End).
void Watcher::deliver(std::deque<LiveEvent>& events) {
  for (LiveEvent& e : events) {
    e.wall_s = seconds_since(sh_.t0);  // rows in the order, and at the time, they are written
    if (e.kind == LiveEvent::Kind::Lost) {
      // The window in flight at the loss, then an empty one: a window never spans a loss (the
      // source's clock may start again when it is back).
      emit_window(e.source);
      windows_[size_t(e.source)].entries.clear();
    }
    if (e.kind == LiveEvent::Kind::End) {
      Window& w = windows_[size_t(e.source)];
      emit_window(e.source);
      std::lock_guard lock(sh_.mu);
      e.arrived = sh_.boxes[size_t(e.source)].arrived;
      e.dropped = sh_.boxes[size_t(e.source)].dropped;
      e.classified = w.classified;
      if (w.first_at) e.seconds = seconds_since(*w.first_at);
      e.latency = w.latencies.summary();
      ++ended_;
    }
    sink_(e);
  }
  events.clear();
}

Clock::time_point Watcher::next_wake(Clock::time_point now) const {
  auto wake = now + std::chrono::milliseconds(100);
  for (const Window& w : windows_)
    if (w.next_hop) wake = std::min(wake, *w.next_hop);
  return wake;
}

// Hands over the events taken with `taken`, classifies those frames, emits the windows due.
void Watcher::step(std::vector<Taken>& taken, std::deque<LiveEvent>& events) {
  // The frame taken from a source came after its events when they hold a Start or Back (it is
  // the reopened source's), else before them (a Lost, an End: the frame was its last).
  std::vector<bool> reopened(sources_.size(), false);
  for (const LiveEvent& e : events)
    if (e.kind == LiveEvent::Kind::Start || e.kind == LiveEvent::Kind::Back)
      reopened[size_t(e.source)] = true;
  auto after = std::stable_partition(
      events.begin(), events.end(), [&](const LiveEvent& e) { return reopened[size_t(e.source)]; });
  std::deque<LiveEvent> last(std::make_move_iterator(after), std::make_move_iterator(events.end()));
  events.erase(after, events.end());
  deliver(events);
  if (!taken.empty()) classify(taken);
  hops(Clock::now());
  deliver(last);
}

// Takes the newest frame of each source (up to a batch) and every event waiting.
void Watcher::take(std::vector<Taken>& taken, std::deque<LiveEvent>& events) {
  const size_t batch = size_t(std::max(1, engine_.max_batch()));
  std::unique_lock lock(sh_.mu);
  sh_.cv.wait_until(lock, next_wake(Clock::now()), [&] {
    return std::any_of(sh_.boxes.begin(), sh_.boxes.end(),
                       [&](const Mailbox& b) { return (b.frame && !halt_) || !b.events.empty(); });
  });
  // Once stopping, frames are left: the windows in flight are written without waiting for
  // another classify.
  for (size_t i = 0; i < sh_.boxes.size() && taken.size() < batch && !halt_; ++i) {
    Mailbox& b = sh_.boxes[i];
    if (b.frame) taken.push_back({int(i), std::move(*b.frame), b.arrived_at});
    b.frame.reset();
  }
  for (Mailbox& b : sh_.boxes) {
    for (LiveEvent& e : b.events) events.push_back(std::move(e));
    b.events.clear();
  }
}

void Watcher::run() {
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<std::jthread> threads;
  for (size_t i = 0; i < sources_.size(); ++i) {
    readers.push_back(std::make_unique<Reader>(sh_, int(i), sources_[i], o_, halt_));
    threads.emplace_back([r = readers.back().get()] { r->run(); });
  }
  try {
    while (ended_ < sources_.size()) {
      if (stop_) halt_ = true;  // the readers see it within a wake (0.1 s at most)
      std::vector<Taken> taken;
      std::deque<LiveEvent> events;
      take(taken, events);
      step(taken, events);
    }
  } catch (...) {
    halt_ = true;  // a failed classify (the device): the readers end before the error goes up
    throw;
  }
}

const char* kind_name(LiveEvent::Kind k) {
  switch (k) {
    case LiveEvent::Kind::Start:
      return "start";
    case LiveEvent::Kind::Frame:
      return "frame";
    case LiveEvent::Kind::Window:
      return "window";
    case LiveEvent::Kind::Lost:
      return "lost";
    case LiveEvent::Kind::Back:
      return "back";
    case LiveEvent::Kind::End:
      return "end";
  }
  return "?";
}

// v to `digits` decimals (the nearest double, so that it prints short).
double rounded(double v, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

nlohmann::json latency_json(const LatencySummary& l) {
  return {{"frames", l.frames},
          {"p50_ms", rounded(l.p50_ms, 2)},
          {"p99_ms", rounded(l.p99_ms, 2)},
          {"max_ms", rounded(l.max_ms, 2)}};
}

nlohmann::json label_json(int label, const std::vector<std::string>& classes) {
  return label >= 0 ? nlohmann::json(classes[size_t(label)]) : nlohmann::json(nullptr);
}

nlohmann::json probs_json(const std::vector<float>& probs,
                          const std::vector<std::string>& classes) {
  nlohmann::json p = nlohmann::json::object();
  for (size_t c = 0; c < probs.size() && c < classes.size(); ++c)
    p[classes[c]] = std::isfinite(probs[c]) ? nlohmann::json(rounded(probs[c], 6)) : nullptr;
  return p;
}

void window_json(const LiveEvent& e, const std::vector<std::string>& classes, nlohmann::json& j) {
  j["from_s"] = rounded(e.from_s, 6);
  j["to_s"] = rounded(e.to_s, 6);
  j["frames"] = e.frames;
  j["label"] = label_json(e.label, classes);
  j["votes"] = nlohmann::json::object();
  for (size_t c = 0; c < e.votes.size(); ++c) j["votes"][classes[c]] = e.votes[c];
  j["probs"] = probs_json(e.probs, classes);
  j["arrived"] = e.arrived;
  j["dropped"] = e.dropped;
  j["latency"] = latency_json(e.latency);
}

}  // namespace

std::string live_event_json(const LiveEvent& e, const std::vector<std::string>& classes) {
  nlohmann::json j = {
      {"event", kind_name(e.kind)}, {"source", e.name}, {"wall_s", rounded(e.wall_s, 3)}};
  using K = LiveEvent::Kind;
  if (e.kind == K::Frame) {
    j["frame"] = e.frame_index;
    j["time_s"] = rounded(e.time_s, 6);
    j["label"] = label_json(e.label, classes);
    j["probs"] = probs_json(e.probs, classes);
    j["latency_ms"] = rounded(e.latency_ms, 2);
  } else if (e.kind == K::Window) {
    window_json(e, classes, j);
  } else if (e.kind == K::Lost) {
    j["reason"] = e.reason;
  } else if (e.kind == K::Back) {
    j["away_s"] = rounded(e.away_s, 3);
  } else if (e.kind == K::End) {
    j["reason"] = e.reason;
    j["arrived"] = e.arrived;
    j["classified"] = e.classified;
    j["dropped"] = e.dropped;
    j["seconds"] = rounded(e.seconds, 3);
    j["classified_per_s"] = e.seconds > 0 ? rounded(double(e.classified) / e.seconds, 2) : 0.0;
    j["latency"] = latency_json(e.latency);
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void watch(Engine& engine, const std::vector<std::string>& sources, const LiveOptions& options,
           const LiveSink& sink, const std::atomic<bool>& stop) {
  if (sources.empty()) fail_option("live: no source given");
  if (!(options.hop_s > 0)) fail_option("{{hop}}: must be more than 0 seconds");
  if (options.window_frames < 0 || (options.window_frames == 0 && !(options.window_s > 0)))
    fail_option("{{window}}: must be more than 0 seconds or frames");
  if (!(options.stall_s > 0)) fail_option("{{stall}}: must be more than 0 seconds");
  if (!(options.give_up_s >= 0)) fail_option("{{give_up}}: must be 0 (never) or more seconds");
  Watcher(engine, sources, options, sink, stop).run();
}

}  // namespace fervid
