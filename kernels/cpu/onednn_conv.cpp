#include "cpu/onednn_conv.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace fervid::cpu {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Runs a oneDNN call; its error becomes a fervid::Error naming the call.
template <class F>
auto checked(const char* call, F&& f) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    fail(std::string("oneDNN ") + call + " failed: " + e.what());
  }
}

// Every primitive run per batch takes its scratchpad from the caller: oneDNN's own is sized per
// thread at the primitive's creation, and a layer's primitives are made in the thread that first
// runs it and run later from whichever thread runs a batch (the Python module's stream, for one).
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// A thread's buffer kept across calls, grown to hold `n` elements; its data.
template <class T>
T* grown(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// A scratchpad for each of `pds` (run one after the other), in this thread's buffer.
template <class... Pd>
std::vector<dnnl::memory> scratchpads(const Pd&... pds) {
  thread_local std::vector<float> buffer;
  size_t bytes = 0;
  ((bytes = std::max(bytes, pds.scratchpad_desc().get_size())), ...);
  // 64 bytes more, so that the start can be aligned to them.
  const auto base = reinterpret_cast<uintptr_t>(grown(buffer, bytes / sizeof(float) + 17));
  void* at = reinterpret_cast<void*>((base + 63) & ~uintptr_t(63));
  return {dnnl::memory(pds.scratchpad_desc(), cpu_engine(), at)...};
}

// OHWI weights of `w`'s shape at `data` (f32, or s8 in int8) in `layout` (a primitive's weights
// descriptor). oneDNN reorders into its Winograd layouts from OIHW only, so those go through OIHW
// first.
dnnl::memory reordered_weights(const Tensor& w, const void* data, dt type,
                               const dnnl::memory::desc& layout) {
  return checked("reorder (weights)", [&] {
    const dnnl::engine& engine = cpu_engine();
    const dnnl::memory::dims dims{w.dim(0), w.dim(3), 3, 3};
    dnnl::memory ohwi({dims, type, tag::ohwi}, engine, const_cast<void*>(data));
    dnnl::memory out(layout, engine);
    dnnl::stream stream(engine);
    if (layout.data.format_kind == dnnl_format_kind_wino) {
      dnnl::memory oihw({dims, type, tag::oihw}, engine);
      dnnl::reorder(ohwi, oihw).execute(stream, ohwi, oihw);
      dnnl::reorder(oihw, out).execute(stream, oihw, out);
    } else {
      dnnl::reorder(ohwi, out).execute(stream, ohwi, out);
    }
    stream.wait();
    return out;
  });
}

// `n` floats rounded to the nearest bf16 value (core's float_to_bf16), kept in f32, over the
// threads.
void round_to_bf16(const float* in, float* out, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(float_to_bf16(in[i]));
}

// Whether the CPU is Intel's and has AVX512_FP16 (CPUID leaf 7, EDX bit 23).
std::pair<bool, bool> intel_and_avx512_fp16() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return {false, false};
  char vendor[12];
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  const bool intel = std::memcmp(vendor, "GenuineIntel", 12) == 0;
  if (a < 7 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return {intel, false};
  return {intel, ((d >> 23) & 1u) != 0};
#else
  return {false, false};
#endif
}

}  // namespace

bool onednn_built() { return true; }

std::string bf16_dot_slow_on(bool intel, bool avx512_fp16, bool amx) {
  if (!intel || !avx512_fp16 || amx) return "";
  return "Intel's Sapphire Rapids generation without AMX: AVX512_BF16's dot product runs at half "
         "the f32 FMA's rate";
}

std::string onednn_bf16_dot_slow() {
  // Below avx512_core_bf16 there is no bf16 at all; at avx512_core_amx there is AMX.
  if (dnnl::get_effective_cpu_isa() != dnnl::cpu_isa::avx512_core_bf16) return "";
  const auto [intel, fp16] = intel_and_avx512_fp16();
  return bf16_dot_slow_on(intel, fp16, /*amx=*/false);
}

// The best instructions oneDNN uses here, in words.
std::string isa_words() {
  std::string have = "older than AVX";
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_bf16:
      return "AVX-512 with VNNI and BF16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "AMX";
    case dnnl::cpu_isa::sse41:
      have = "SSE4.1";
      break;
    case dnnl::cpu_isa::avx:
      have = "AVX";
      break;
    case dnnl::cpu_isa::avx2:
      have = "AVX2";
      break;
    case dnnl::cpu_isa::avx2_vnni:
      have = "AVX2 with AVX-VNNI";
      break;
    case dnnl::cpu_isa::avx512_core:
      have = "AVX-512 without VNNI";
      break;
    case dnnl::cpu_isa::avx512_core_vnni:
      have = "AVX-512 with VNNI, without BF16";
      break;
    default:
      break;
  }
  return have;
}

std::string onednn_bf16_unavailable() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  if (isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx) return "";
  return "this CPU has neither AVX512_BF16 nor AMX (its best instructions: " + isa_words() + ")";
}

std::string onednn_int8_unavailable() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2_vnni:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
      return "";
    default:
      return "this CPU has neither AVX-512 VNNI, AVX-VNNI nor AMX (its best instructions: " +
             isa_words() + ")";
  }
}

std::string onednn_winograd_unavailable() {
  // Asked once of oneDNN itself, on a layer of VGG16's kind.
  static const bool has = [] {
    const dnnl::memory::dims x{1, 64, 14, 14};
    try {
      const dnnl::convolution_forward::desc d(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd,
          {x, dt::f32, tag::any}, {{64, 64, 3, 3}, dt::f32, tag::any}, {{64}, dt::f32, tag::a},
          {x, dt::f32, tag::any}, {1, 1}, {1, 1}, {1, 1});
      dnnl::convolution_forward::primitive_desc pd(d, cpu_engine());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return has ? "" : "oneDNN has no Winograd convolution for this CPU (it needs AVX-512)";
}

// One primitive: `rows` output rows of a frame `w` wide from rows + 2 - pad_top - pad_bottom input
// rows (a band of the frame, or all of it with both pads).
struct OnednnConv::Prim {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  // The weights in pd's layout, shared by the primitives that ask for the same one.
  std::shared_ptr<dnnl::memory> weights;
};

// A frame size's Winograd convolution: NHWC frame -> oneDNN's layout -> convolution (+ReLU) ->
// 2x2 max pool when one follows -> NHWC.
struct OnednnConv::Wino {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  dnnl::memory weights;
  dnnl::reorder::primitive_desc in_pd, out_pd;
  dnnl::reorder in, out;
  std::optional<dnnl::pooling_forward::primitive_desc> pool_pd;
  std::optional<dnnl::pooling_forward> pool;
  dnnl::memory::desc src_nhwc, dst_nhwc, pooled;  // pooled: the pool's output, in its layout
};

// A frame size's work: Winograd's, or the bands of output rows, each with its primitive, and in
// bf16 the frame's f32 -> bf16 reorder in front of them.
struct OnednnConv::Plan {
  struct Band {
    int in_row, out_row, rows;
    Prim* prim;
  };
  std::unique_ptr<Wino> wino;
  std::vector<Band> bands;
  // bf16: the frame to bf16; int8: the frame to u8 times 1 / in_scale (quantize_u8's rounding:
  // to nearest, ties to even, saturated to 0..255).
  std::optional<dnnl::reorder::primitive_desc> to_input_pd;
  std::optional<dnnl::reorder> to_input;
  dnnl::memory::desc src_f32, src;
};

OnednnConv::OnednnConv(Tensor w, OnednnMath math, float in_scale, Int8Io io)
    : w_(std::move(w)), math_(math), in_scale_(in_scale), io_(io) {
  expect(w_, {w_.dim(0), 3, 3, w_.dim(3)}, DType::F32, "onednn conv3x3_bias_relu", "w");
  if (int8()) {
    if (!(in_scale_ > 0) || !std::isfinite(in_scale_))
      fail("onednn conv3x3_bias_relu: int8 needs the input's scale (> 0)");
    Int8Weights q = quantize_weights_s8(w_);
    w8_ = std::move(q.values);
    for (float s : q.scales) out_scales_.push_back(in_scale_ * s);
  }
  if (rounds()) {
    rounded_w_ = host_tensor(w_.shape(), DType::F32);
    round_to_bf16(w_.ptr<const float>(), rounded_w_.tensor.ptr<float>(), w_.numel());
    w_ = rounded_w_.tensor;
  }
}

OnednnConv::~OnednnConv() = default;

OnednnConv::Prim& OnednnConv::prim(int rows, int w, int pad_top, int pad_bottom) {
  const std::tuple<int, int, int> key{rows, w, pad_top * 2 + pad_bottom};
  if (auto it = prims_.find(key); it != prims_.end()) return *it->second;
  const dnnl::memory::dim k = w_.dim(0), c = w_.dim(3), in_rows = rows + 2 - pad_top - pad_bottom;
  const dnnl::engine& engine = cpu_engine();
  auto p = std::make_unique<Prim>();
  checked("convolution_forward (primitive descriptor)", [&] {
    const dt in = bf16() ? dt::bf16 : int8() ? dt::u8 : dt::f32;
    const dnnl::memory::desc src({1, c, in_rows, w}, in, tag::nhwc);
    const dnnl::memory::desc wei({k, c, 3, 3}, int8() ? dt::s8 : in, tag::any);
    const dnnl::memory::desc bias({k}, dt::f32, tag::a);
    const dnnl::memory::desc dst({1, k, rows, w}, u8_out() ? dt::u8 : dt::f32, tag::nhwc);
    dnnl::post_ops relu;
    relu.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_post_ops(relu);
    // int8: the integer sums times in_scale * the weights' scale of their output channel.
    // A u8 output is that divided by the next layer's input scale.
    if (int8()) {
      std::vector<float> scales = out_scales_;
      if (u8_out())
        for (float& v : scales) v /= io_.out_scale;
      attr.set_output_scales(1 << 1, scales);
    }
    const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::convolution_direct, src, wei, bias,
                                            dst, {1, 1}, {pad_top, 1}, {pad_bottom, 1});
    p->pd = dnnl::convolution_forward::primitive_desc(d, attr, engine);
    return 0;
  });
  checked("convolution_forward (primitive)", [&] {
    p->conv = dnnl::convolution_forward(p->pd);
    return 0;
  });
  // The weights, reordered once per layout a primitive asks for (bands mostly share one).
  for (const auto& [key, other] : prims_)
    if (other && other->pd.weights_desc() == p->pd.weights_desc()) p->weights = other->weights;
  if (!p->weights)
    p->weights = std::make_shared<dnnl::memory>(
        int8() ? reordered_weights(w_, w8_.data(), dt::s8, p->pd.weights_desc())
               : reordered_weights(w_, w_.data(), dt::f32, p->pd.weights_desc()));
  return *(prims_[key] = std::move(p));
}

std::unique_ptr<OnednnConv::Wino> OnednnConv::wino(int h, int w, bool pool) {
  const dnnl::memory::dim k = w_.dim(0), c = w_.dim(3);
  const dnnl::engine& engine = cpu_engine();
  auto p = std::make_unique<Wino>();
  dnnl::post_ops relu;
  relu.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  dnnl::primitive_attr attr = user_scratchpad();
  attr.set_post_ops(relu);
  const dnnl::convolution_forward::desc d(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd,
      {{1, c, h, w}, dt::f32, tag::any}, {{k, c, 3, 3}, dt::f32, tag::any}, {{k}, dt::f32, tag::a},
      {{1, k, h, w}, dt::f32, tag::any}, {1, 1}, {1, 1}, {1, 1});
  try {
    p->pd = dnnl::convolution_forward::primitive_desc(d, attr, engine);
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_unimplemented) return nullptr;  // no Winograd kernel on this CPU
    fail(std::string("oneDNN convolution_forward (Winograd primitive descriptor) failed: ") +
         e.what());
  }
  checked("convolution_forward (Winograd)", [&] {
    p->conv = dnnl::convolution_forward(p->pd);
    p->src_nhwc = dnnl::memory::desc({1, c, h, w}, dt::f32, tag::nhwc);
    p->in_pd = dnnl::reorder::primitive_desc(engine, p->src_nhwc, engine, p->pd.src_desc(),
                                             user_scratchpad());
    p->in = dnnl::reorder(p->in_pd);
    dnnl::memory::desc from = p->pd.dst_desc();
    const int oh = pool ? h / 2 : h, ow = pool ? w / 2 : w;
    if (pool) {
      const dnnl::pooling_forward::desc pd(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, from,
          {{1, k, oh, ow}, dt::f32, tag::any}, {2, 2}, {2, 2}, {0, 0}, {0, 0});
      const dnnl::pooling_forward::primitive_desc ppd(pd, user_scratchpad(), engine);
      p->pool_pd.emplace(ppd);
      p->pool.emplace(ppd);
      from = p->pooled = ppd.dst_desc();
    }
    p->dst_nhwc = dnnl::memory::desc({1, k, oh, ow}, dt::f32, tag::nhwc);
    p->out_pd = dnnl::reorder::primitive_desc(engine, from, engine, p->dst_nhwc, user_scratchpad());
    p->out = dnnl::reorder(p->out_pd);
    return 0;
  });
  p->weights = reordered_weights(w_, w_.data(), dt::f32, p->pd.weights_desc());
  return p;
}

OnednnConv::Plan& OnednnConv::plan(int h, int w, bool pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = plans_[{h, w, pool}];
  if (slot) return *slot;
  const dnnl::memory::dim k = w_.dim(0), c = w_.dim(3);
  auto p = std::make_unique<Plan>();
  if (math_ == OnednnMath::Winograd && (p->wino = wino(h, w, pool))) return *(slot = std::move(p));
  // In fp32 with a pool after it, the frame goes through in bands of an even number of rows
  // whose output fits in a core's cache, each pooled while it is there (the unpooled frame never
  // goes to memory); otherwise in one piece (bf16's AMX/AVX512_BF16 kernels lost more on the
  // smaller calls than the pool gained: docs/perf/cpu.md). A band's rows depend on the frame's
  // shape only, so a frame's result does not depend on the frames beside it.
  int band = h;
  if (pool && !bf16()) {
    const int64_t row_bytes = int64_t(w) * k * (u8_out() ? 1 : 4);
    band = std::max<int64_t>(2, (kBandBytes / row_bytes) & ~int64_t(1));
  }
  for (int r0 = 0; r0 < h; r0 += band) {
    const int rows = std::min(band, h - r0);
    const int pad_top = r0 == 0 ? 1 : 0, pad_bottom = r0 + rows == h ? 1 : 0;
    p->bands.push_back({r0 - 1 + pad_top, r0, rows, &prim(rows, w, pad_top, pad_bottom)});
  }
  checked("reorder (frame to bf16 or u8)", [&] {
    p->src_f32 = dnnl::memory::desc({1, c, h, w}, dt::f32, tag::nhwc);
    p->src = dnnl::memory::desc({1, c, h, w},
                                bf16()   ? dt::bf16
                                : int8() ? dt::u8
                                         : dt::f32,
                                tag::nhwc);
    const dnnl::engine& engine = cpu_engine();
    if (bf16() || (int8() && !io_.u8_input)) {
      dnnl::primitive_attr attr = user_scratchpad();
      if (int8()) attr.set_output_scales(0, {1.0f / in_scale_});
      p->to_input_pd.emplace(engine, p->src_f32, engine, p->src, attr);
      p->to_input.emplace(*p->to_input_pd);
    }
    return 0;
  });
  slot = std::move(p);
  return *slot;
}

void OnednnConv::run(const Tensor& x, const Tensor& b, bool pool, const Tensor& y) {
  constexpr const char* op = "onednn conv3x3_bias_relu";
  if (x.rank() != 4) fail(std::string(op) + ": x must be rank 4");
  const int n = int(x.dim(0)), h = int(x.dim(1)), wd = int(x.dim(2)), c = int(x.dim(3));
  const int k = int(w_.dim(0));
  const bool u8_in = int8() && io_.u8_input;
  expect(x, {n, h, wd, w_.dim(3)}, u8_in ? DType::U8 : DType::F32, op, "x");
  expect(b, {k}, DType::F32, op, "b");
  expect(y, pool ? std::vector<int64_t>{n, h / 2, wd / 2, k} : std::vector<int64_t>{n, h, wd, k},
         u8_out() ? DType::U8 : DType::F32, op, "y");
  Plan& p = plan(h, wd, pool);
  if (p.wino) return run_winograd(*p.wino, x, b, y);
  const dnnl::engine& engine = cpu_engine();
  // Sizes in elements; the pointers below step in bytes of their own dtype.
  const size_t in_frame = size_t(h) * wd * c, out_frame = size_t(h) * wd * k;
  const size_t pooled_frame = size_t(h / 2) * (wd / 2) * k, in_row = size_t(wd) * c;
  const size_t out_row = size_t(wd) * k, pooled_row = size_t(wd / 2) * k;
  const size_t in_size = u8_in ? 1 : 4, out_size = u8_out() ? 1 : 4;
  const size_t conv_in_size = bf16() ? 2 : int8() ? 1 : 4;  // what the primitive reads
  // A band's unpooled output, when a pool follows, and the frame in bf16 or u8 (or rounded to
  // bf16, in f32); reused across calls.
  thread_local std::vector<float> scratch, rounded, int8_bias;
  thread_local std::vector<uint16_t> input;
  if (pool) grown(scratch, (size_t(p.bands[0].rows) * out_row * out_size + 3) / 4);
  if (bf16() || (int8() && !u8_in)) grown(input, in_frame);  // u8 takes half of it
  if (rounds()) grown(rounded, in_frame);
  const float* bias_at = b.ptr<const float>();
  if (int8()) {
    // oneDNN 2's int8 convolution scales the bias with the sums (scale * (sum + bias)), so it
    // gets the bias divided by each channel's scale.
    float* scaled = grown(int8_bias, size_t(k));
    for (int o = 0; o < k; ++o) scaled[o] = bias_at[o] / out_scales_[size_t(o)];
    bias_at = scaled;
  }
  auto* const x_bytes = static_cast<std::byte*>(x.data());
  auto* const y_bytes = static_cast<std::byte*>(y.data());
  auto* const scratch_bytes = reinterpret_cast<std::byte*>(scratch.data());
  checked("convolution_forward (execute)", [&] {
    dnnl::stream stream(engine);
    dnnl::memory frame(p.src_f32, engine, nullptr), whole(p.src, engine, input.data());
    dnnl::memory bias({{k}, dt::f32, tag::a}, engine, const_cast<float*>(bias_at));
    for (int i = 0; i < n; ++i) {
      std::byte* src_frame = x_bytes + i * in_frame * in_size;
      if (rounds()) {
        round_to_bf16(reinterpret_cast<const float*>(src_frame), rounded.data(), int64_t(in_frame));
        src_frame = reinterpret_cast<std::byte*>(rounded.data());
      }
      if (p.to_input) {
        frame.set_data_handle(src_frame);
        p.to_input->execute(stream, {{DNNL_ARG_FROM, frame},
                                     {DNNL_ARG_TO, whole},
                                     {DNNL_ARG_SCRATCHPAD, scratchpads(*p.to_input_pd)[0]}});
        src_frame = reinterpret_cast<std::byte*>(input.data());
      }
      for (const Plan::Band& band : p.bands) {
        const Prim& pr = *band.prim;
        std::byte* src_at = src_frame + band.in_row * in_row * conv_in_size;
        std::byte* out =
            pool ? scratch_bytes : y_bytes + (i * out_frame + band.out_row * out_row) * out_size;
        dnnl::memory src(pr.pd.src_desc(), engine, src_at), dst(pr.pd.dst_desc(), engine, out);
        pr.conv.execute(stream, {{DNNL_ARG_SRC, src},
                                 {DNNL_ARG_WEIGHTS, *pr.weights},
                                 {DNNL_ARG_BIAS, bias},
                                 {DNNL_ARG_DST, dst},
                                 {DNNL_ARG_SCRATCHPAD, scratchpads(pr.pd)[0]}});
        stream.wait();
        if (!pool) continue;
        // The band's pairs of rows pooled (a band starts at an even row; floor at the bottom).
        std::byte* pooled =
            y_bytes + (i * pooled_frame + (band.out_row / 2) * pooled_row) * out_size;
        const int pairs = band.rows / 2;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < pairs; ++r) {
          std::byte* from = out + 2 * r * out_row * out_size;
          std::byte* to = pooled + r * pooled_row * out_size;
          if (u8_out())
            maxpool_nhwc_u8(reinterpret_cast<const uint8_t*>(from), 1, 2, wd, k,
                            reinterpret_cast<uint8_t*>(to));
          else
            maxpool_nhwc(reinterpret_cast<const float*>(from), 1, 2, wd, k,
                         reinterpret_cast<float*>(to));
        }
      }
    }
    return 0;
  });
}

bool OnednnConv::winograd(int h, int w, bool pool) { return plan(h, w, pool).wino != nullptr; }

void OnednnConv::run_winograd(Wino& p, const Tensor& x, const Tensor& b, const Tensor& y) {
  const dnnl::engine& engine = cpu_engine();
  const int n = int(x.dim(0));
  const size_t in_frame = p.src_nhwc.get_size() / sizeof(float);
  const size_t out_frame = p.dst_nhwc.get_size() / sizeof(float);
  // The frame, the convolution's output and the pooled output in oneDNN's layouts; reused.
  thread_local std::vector<float> src, dst, pooled;
  const auto fit = [](std::vector<float>& v, const dnnl::memory::desc& d) {
    return grown(v, d.get_size() / sizeof(float));
  };
  checked("convolution_forward (Winograd, execute)", [&] {
    dnnl::stream stream(engine);
    dnnl::memory frame(p.src_nhwc, engine, nullptr), out(p.dst_nhwc, engine, nullptr);
    dnnl::memory in(p.pd.src_desc(), engine, fit(src, p.pd.src_desc()));
    dnnl::memory conv(p.pd.dst_desc(), engine, fit(dst, p.pd.dst_desc()));
    dnnl::memory bias({{b.dim(0)}, dt::f32, tag::a}, engine, b.data());
    std::optional<dnnl::memory> pool;
    if (p.pool) pool.emplace(p.pooled, engine, fit(pooled, p.pooled));
    // The primitives run one after the other, so they share one scratchpad buffer.
    const std::vector<dnnl::memory> pads = p.pool_pd
                                               ? scratchpads(p.in_pd, p.pd, *p.pool_pd, p.out_pd)
                                               : scratchpads(p.in_pd, p.pd, p.out_pd);
    for (int i = 0; i < n; ++i) {
      frame.set_data_handle(const_cast<float*>(x.ptr<const float>()) + i * in_frame);
      out.set_data_handle(y.ptr<float>() + i * out_frame);
      p.in.execute(stream,
                   {{DNNL_ARG_FROM, frame}, {DNNL_ARG_TO, in}, {DNNL_ARG_SCRATCHPAD, pads[0]}});
      p.conv.execute(stream, {{DNNL_ARG_SRC, in},
                              {DNNL_ARG_WEIGHTS, p.weights},
                              {DNNL_ARG_BIAS, bias},
                              {DNNL_ARG_DST, conv},
                              {DNNL_ARG_SCRATCHPAD, pads[1]}});
      if (pool)
        p.pool->execute(
            stream, {{DNNL_ARG_SRC, conv}, {DNNL_ARG_DST, *pool}, {DNNL_ARG_SCRATCHPAD, pads[2]}});
      p.out.execute(stream, {{DNNL_ARG_FROM, pool ? *pool : conv},
                             {DNNL_ARG_TO, out},
                             {DNNL_ARG_SCRATCHPAD, pads.back()}});
      stream.wait();
    }
    return 0;
  });
}

}  // namespace fervid::cpu
