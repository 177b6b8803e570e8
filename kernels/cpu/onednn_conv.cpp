#include "cpu/onednn_conv.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"

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

}  // namespace

bool onednn_built() { return true; }

std::string onednn_bf16_unavailable() {
  std::string have = "older than AVX";
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
      return "";
    case dnnl::cpu_isa::sse41:
      have = "SSE4.1";
      break;
    case dnnl::cpu_isa::avx:
      have = "AVX";
      break;
    case dnnl::cpu_isa::avx2:
    case dnnl::cpu_isa::avx2_vnni:
      have = "AVX2";
      break;
    case dnnl::cpu_isa::avx512_core:
    case dnnl::cpu_isa::avx512_core_vnni:
      have = "AVX-512 without BF16";
      break;
    default:
      break;
  }
  return "this CPU has neither AVX512_BF16 nor AMX (its best instructions: " + have + ")";
}

struct OnednnConv::Plan {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  dnnl::memory weights;  // in pd's weights layout
  // bf16: the frame's f32 -> bf16 reorder in front of the convolution.
  std::optional<dnnl::reorder> to_bf16;
  dnnl::memory::desc src_f32;
};

OnednnConv::OnednnConv(Tensor w, bool bf16) : w_(std::move(w)), bf16_(bf16) {
  expect(w_, {w_.dim(0), 3, 3, w_.dim(3)}, DType::F32, "onednn conv3x3_bias_relu", "w");
}

OnednnConv::~OnednnConv() = default;

OnednnConv::Plan& OnednnConv::plan(int h, int w) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = plans_[{h, w}];
  if (slot) return *slot;
  const dnnl::memory::dim k = w_.dim(0), c = w_.dim(3);
  const dnnl::engine& engine = cpu_engine();
  auto p = std::make_unique<Plan>();
  checked("convolution_forward (primitive descriptor)", [&] {
    const dt in = bf16_ ? dt::bf16 : dt::f32;
    p->src_f32 = dnnl::memory::desc({1, c, h, w}, dt::f32, tag::nhwc);
    const dnnl::memory::desc src({1, c, h, w}, in, tag::nhwc);
    const dnnl::memory::desc wei({k, c, 3, 3}, in, tag::any);
    const dnnl::memory::desc bias({k}, dt::f32, tag::a);
    const dnnl::memory::desc dst({1, k, h, w}, dt::f32, tag::nhwc);
    dnnl::post_ops relu;
    relu.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(relu);
    const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::convolution_direct, src, wei, bias,
                                            dst, {1, 1}, {1, 1}, {1, 1});
    p->pd = dnnl::convolution_forward::primitive_desc(d, attr, engine);
    return 0;
  });
  checked("convolution_forward (primitive)", [&] {
    p->conv = dnnl::convolution_forward(p->pd);
    if (bf16_)
      p->to_bf16.emplace(
          dnnl::reorder::primitive_desc(engine, p->src_f32, engine, p->pd.src_desc()));
    return 0;
  });
  checked("reorder (weights)", [&] {
    dnnl::memory ohwi({{k, c, 3, 3}, dt::f32, tag::ohwi}, engine, w_.data());
    p->weights = dnnl::memory(p->pd.weights_desc(), engine);
    dnnl::stream stream(engine);
    dnnl::reorder(ohwi, p->weights).execute(stream, ohwi, p->weights);
    stream.wait();
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
  expect(x, {n, h, wd, w_.dim(3)}, DType::F32, op, "x");
  expect(b, {k}, DType::F32, op, "b");
  expect(y, pool ? std::vector<int64_t>{n, h / 2, wd / 2, k} : std::vector<int64_t>{n, h, wd, k},
         DType::F32, op, "y");
  Plan& p = plan(h, wd);
  const dnnl::engine& engine = cpu_engine();
  const size_t in_frame = size_t(h) * wd * c, out_frame = size_t(h) * wd * k;
  const size_t pooled_frame = size_t(h / 2) * (wd / 2) * k;
  // One frame's unpooled output, when a pool follows, and its bf16 input; reused across calls.
  thread_local std::vector<float> scratch;
  thread_local std::vector<uint16_t> input;
  if (pool && scratch.size() < out_frame) scratch.resize(out_frame);
  if (bf16_ && input.size() < in_frame) input.resize(in_frame);
  checked("convolution_forward (execute)", [&] {
    dnnl::stream stream(engine);
    dnnl::memory frame(p.src_f32, engine, nullptr);
    dnnl::memory src(p.pd.src_desc(), engine, bf16_ ? input.data() : nullptr);
    dnnl::memory dst(p.pd.dst_desc(), engine, nullptr);
    dnnl::memory bias(p.pd.bias_desc(), engine, b.data());
    for (int i = 0; i < n; ++i) {
      if (bf16_) {
        frame.set_data_handle(x.ptr<float>() + i * in_frame);
        p.to_bf16->execute(stream, frame, src);
      } else {
        src.set_data_handle(x.ptr<float>() + i * in_frame);
      }
      float* out = pool ? scratch.data() : y.ptr<float>() + i * out_frame;
      dst.set_data_handle(out);
      p.conv.execute(stream, {{DNNL_ARG_SRC, src},
                              {DNNL_ARG_WEIGHTS, p.weights},
                              {DNNL_ARG_BIAS, bias},
                              {DNNL_ARG_DST, dst}});
      stream.wait();
      if (!pool) continue;
      // The 2x2 pool, a pair of rows per task over the threads.
      float* pooled = y.ptr<float>() + i * pooled_frame;
      const size_t in_pair = size_t(2) * wd * k, out_row = size_t(wd / 2) * k;
#pragma omp parallel for schedule(static)
      for (int r = 0; r < h / 2; ++r)
        maxpool_nhwc(out + r * in_pair, 1, 2, wd, k, pooled + r * out_row);
    }
    return 0;
  });
}

}  // namespace fervid::cpu
