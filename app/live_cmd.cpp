// fervid live: live sources classified as they arrive, a JSON Lines row per event (docs/live.md),
// each written whole and flushed, so that another program can follow the output.
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <set>

#include "cli.h"
#include "fervid/live.h"
#include "fervid/output_file.h"
#include "fervid/plan.h"

namespace fervid::cli {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_stop_signal(int) { g_stop.store(true); }

// SIGINT and SIGTERM end the watch (the windows in flight are written, exit 0); a reader of the
// output that goes away is a failed write, not a SIGPIPE.
struct StopSignals {
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    old_pipe_ = std::signal(SIGPIPE, SIG_IGN);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    std::signal(SIGPIPE, old_pipe_);
  }
  struct sigaction old_int_ {
  }, old_term_{};
  void (*old_pipe_)(int) = SIG_DFL;
};

// Where the rows go: standard output, a FIFO or device as it is, or a regular file appended to
// (a run never destroys the rows of an earlier one; each run's rows begin with its start rows).
class LiveOutput {
 public:
  explicit LiveOutput(const std::string& path) {
    const OutputTarget t = OutputTarget::at(path.empty() ? "-" : path, "--output");
    if (t.is_stdout()) return;
    file_ = std::fopen(t.file().c_str(), t.is_stream() ? "w" : "a");
    if (!file_) fail(t.path() + ": cannot write: " + std::strerror(errno));
    name_ = t.path();
  }
  ~LiveOutput() {
    if (file_) std::fclose(file_);
  }
  LiveOutput(const LiveOutput&) = delete;
  LiveOutput& operator=(const LiveOutput&) = delete;
  // One whole line, flushed; false when it could not be written (the reader went away).
  bool write(const std::string& line) {
    std::FILE* f = file_ ? file_ : stdout;
    const std::string l = line + "\n";
    return std::fwrite(l.data(), 1, l.size(), f) == l.size() && std::fflush(f) == 0;
  }
  const std::string& name() const { return name_; }

 private:
  std::FILE* file_ = nullptr;
  std::string name_ = "standard output";
};

std::string shown(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

// "2s", "2.5", "1500ms" (seconds) or "50f" (frames): --window's value.
void parse_window(const std::string& text, LiveOptions& o) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const std::string unit = end ? std::string(end) : "";
  if (end == text.c_str() || !(v > 0) ||
      !(unit.empty() || unit == "s" || unit == "ms" || unit == "f"))
    fail_option("--window " + text + ": expected seconds (2s, 1500ms) or frames (50f)");
  if (unit == "f") {
    if (v != std::floor(v) || v > 1e6) fail_option("--window " + text + ": a whole frame count");
    o.window_frames = int(v);
  } else {
    o.window_s = unit == "ms" ? v / 1000 : v;
  }
}

// The status line for a person watching (standard error on a terminal).
void status_line(const LiveEvent& e, const std::vector<std::string>& classes) {
  std::fprintf(stderr, "\r\033[K%s: %s %.2f (%d frames, %lld dropped, p99 %.0f ms)", e.name.c_str(),
               e.label >= 0 ? classes[size_t(e.label)].c_str() : "-",
               e.label >= 0 ? double(e.probs[size_t(e.label)]) : 0.0, e.frames,
               static_cast<long long>(e.dropped), e.latency.p99_ms);
  std::fflush(stderr);
}

void note_line(const LiveEvent& e, bool terminal) {
  const char* lead = terminal ? "\r\033[K" : "";
  if (e.kind == LiveEvent::Kind::Lost)
    std::fprintf(stderr, "%sfervid: live %s: lost: %s\n", lead, e.name.c_str(), e.reason.c_str());
  if (e.kind == LiveEvent::Kind::Back)
    std::fprintf(stderr, "%sfervid: live %s: back after %.1f s\n", lead, e.name.c_str(), e.away_s);
  if (e.kind == LiveEvent::Kind::End)
    std::fprintf(stderr,
                 "%sfervid: live %s: %lld frames classified of %lld arrived (%lld dropped) in "
                 "%.1f s, %.1f frames/s; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; %s\n",
                 lead, e.name.c_str(), static_cast<long long>(e.classified),
                 static_cast<long long>(e.arrived), static_cast<long long>(e.dropped), e.seconds,
                 e.seconds > 0 ? double(e.classified) / e.seconds : 0.0, e.latency.p50_ms,
                 e.latency.p99_ms, e.latency.max_ms, e.reason.c_str());
}

std::unique_ptr<Engine> live_engine(const LiveArgs& a, std::optional<VoteMode>& vote) {
  OptionValues values;
  values.device = a.device;
  values.precision = a.precision;
  values.threads = a.threads;
  values.batch = std::max(1, int(a.sources.size()));
  values.vote = a.vote;
  const Plan plan = plan_of(values);
  Weights weights = load_weights(a.weights, a.spec);
  if (weights.untrained() && !a.quiet) warn_untrained(a.weights);
  EngineOptions eo;
  plan.fill(eo);
  if (a.quiet) eo.notify = [](const std::string&) {};
  vote = plan.vote;
  return std::make_unique<Engine>(std::move(weights), eo);
}

LiveOptions live_options(const LiveArgs& a) {
  LiveOptions o;
  parse_window(a.window, o);
  if (!(a.hop > 0)) fail_option("--hop " + shown(a.hop) + ": must be more than 0 s");
  if (!(a.stall > 0)) fail_option("--stall " + shown(a.stall) + ": must be more than 0 s");
  if (!(a.give_up >= 0)) fail_option("--give-up " + shown(a.give_up) + ": 0 (never) or more");
  o.hop_s = a.hop;
  o.stall_s = a.stall;
  o.give_up_s = a.give_up;
  o.frames = a.frames;
  o.source_format = a.source_format;
  for (const std::string& kv : a.source_options) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      fail_option("--source-option " + kv + ": expected KEY=VALUE (e.g. rtsp_transport=tcp)");
    o.source_options.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return o;
}

}  // namespace

void check_live_args(const LiveArgs& a) { live_options(a); }

int run_live(const LiveArgs& a) {
  LiveOptions o = live_options(a);
  LiveOutput out(a.output);
  std::optional<VoteMode> vote;
  std::unique_ptr<Engine> engine = live_engine(a, vote);
  const std::vector<std::string>& classes = engine->spec().classes;
  o.vote = vote.value_or(engine->spec().vote);
  o.crop = CropSpec::parse(a.crop.empty() ? engine->spec().crop : a.crop);
  if (o.crop.mode == CropSpec::Mode::Haar || o.crop.mode == CropSpec::Mode::Boxes)
    fail_option("live: --crop " + a.crop + ": take full, center, box=x,y,w,h or face");
  const bool terminal = !a.quiet && ::isatty(STDERR_FILENO);
  bool write_failed = false;
  std::set<std::string> started, never;  // sources that gave frames; that ended without any
  StopSignals signals;
  g_stop = false;
  watch(
      *engine, a.sources, o,
      [&](const LiveEvent& e) {
        if (!write_failed && !out.write(live_event_json(e, classes))) {
          write_failed = true;
          g_stop = true;
        }
        if (e.kind == LiveEvent::Kind::Start) started.insert(e.name);
        if (e.kind == LiveEvent::Kind::End && !started.count(e.name)) never.insert(e.name);
        if (a.quiet) return;
        if (e.kind == LiveEvent::Kind::Window && terminal) status_line(e, classes);
        note_line(e, terminal);
      },
      g_stop);
  if (write_failed) {
    std::cerr << "fervid: live: " << out.name() << ": cannot write (its reader went away?)\n";
    return kExitSomeFailed;
  }
  for (const std::string& s : never)
    std::cerr << "fervid: live: " << s << ": no frame came from it\n";
  return never.empty() ? kExitOk : kExitSomeFailed;
}

}  // namespace fervid::cli
