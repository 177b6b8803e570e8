#include "model.h"

#include <algorithm>

#include "fervid/error.h"

namespace fervid {

namespace {

std::vector<int64_t> act_shape(Layout layout, int64_t n, int64_t c, int64_t h, int64_t w) {
  if (layout == Layout::NHWC) return {n, h, w, c};
  return {n, c, h, w};
}

// Runs one op; a failure names the layer it happened in.
template <typename Fn>
void in_layer(const std::string& layer, Fn&& op) {
  try {
    op();
  } catch (const Error& e) {
    fail_within(layer + ": ", e);
  }
}

}  // namespace

std::vector<LayerDesc> network_of(const ModelSpec& spec) {
  std::vector<LayerDesc> net;
  int64_t size = spec.input_size, channels = 3;
  for (const ConvLayer& l : spec.conv_layers()) {
    LayerDesc d;
    d.kind = LayerKind::Conv;
    d.name = l.name;
    d.in_channels = l.in_channels;
    d.height = d.width = size;
    d.out_channels = l.out_channels;
    d.pool = l.pool;
    if (auto it = spec.int8_scales.find(l.name); it != spec.int8_scales.end())
      d.int8_scale = it->second;
    net.push_back(d);
    size = d.out_height();
    channels = l.out_channels;
  }
  // Each conv layer's output scale is the int8 input scale of the conv layer after it.
  for (size_t i = 0; i + 1 < net.size(); ++i) net[i].int8_out_scale = net[i + 1].int8_scale;
  if (spec.head == Head::Gap) {
    LayerDesc g;
    g.kind = LayerKind::GlobalAvgPool;
    g.name = "gap";
    g.in_channels = channels;
    g.height = g.width = size;
    net.push_back(g);
    size = 1;
  }
  const std::vector<DenseLayer> dense = spec.dense_layers();
  for (size_t i = 0; i < dense.size(); ++i) {
    LayerDesc d;
    d.kind = LayerKind::Dense;
    d.name = "fc" + std::to_string(i + 1);
    d.in_channels = i == 0 ? channels : dense[i - 1].out_features;
    d.height = d.width = i == 0 ? size : 1;  // fc1 of the flatten head: the flattened activation
    d.out_channels = dense[i].out_features;
    d.relu = dense[i].relu;
    d.logits = i + 1 == dense.size();
    net.push_back(d);
  }
  return net;
}

Model::Model(const Weights& weights, Backend& backend, int max_batch, bool features)
    : spec_(weights.spec),
      backend_(backend),
      max_batch_(max_batch),
      layers_(network_of(weights.spec)) {
  static const LayerWeights kNone;
  size_t conv = 0, dense = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const LayerDesc& l = layers_[i];
    const LayerWeights& w = l.kind == LayerKind::Conv    ? weights.conv.at(conv++)
                            : l.kind == LayerKind::Dense ? weights.dense.at(dense++)
                                                         : kNone;
    // A layer reads the u8 output of the layer before it only when it says so.
    layers_[i].u8_input = i > 0 && l.inputs.empty() && prepared_.back()->writes_u8();
    in_layer(l.name, [&] { prepared_.push_back(backend.prepare(l, w)); });
    if (l.kind == LayerKind::Conv) last_conv_ = int(i);
  }
  if (features && last_conv_ >= 0) {
    features_desc_ = layers_[size_t(last_conv_)];
    features_desc_.pool = false;
    in_layer(features_desc_.name,
             [&] { features_ = backend.prepare(features_desc_, weights.conv.back()); });
  }
  allocate_arena();
  // logits, probs (f32) and labels (i32) side by side in one buffer
  const int64_t c = spec_.num_classes();
  head_buf_ = backend.allocate(size_t(max_batch) * (2 * c * 4 + 4) + 64);
  char* base = static_cast<char*>(head_buf_.data());
  logits_ = Tensor(base, {max_batch, c}, DType::F32, Layout::Plain, head_buf_.device());
  probs_ = Tensor(base + max_batch * c * 4, {max_batch, c}, DType::F32, Layout::Plain,
                  head_buf_.device());
  labels_ = Tensor(base + 2 * max_batch * c * 4, {max_batch}, DType::I32, Layout::Plain,
                   head_buf_.device());
}

ArenaPlan plan_arena(std::span<const LayerDesc> layers) {
  auto inputs_of = [&](size_t i) {
    return layers[i].inputs.empty() ? std::vector<int>{int(i) - 1} : layers[i].inputs;
  };
  std::vector<size_t> last_read(layers.size(), 0);
  for (size_t i = 0; i < layers.size(); ++i)
    for (int j : inputs_of(i))
      if (j >= 0) last_read[size_t(j)] = std::max(last_read[size_t(j)], i);
  ArenaPlan plan;
  plan.buffer_of.assign(layers.size(), -1);
  std::vector<int> free;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i].logits) {
      if (free.empty()) free.push_back(plan.buffers++);
      plan.buffer_of[i] = free.back();
      free.pop_back();
    }
    for (int j : inputs_of(i))
      if (j >= 0 && last_read[size_t(j)] == i && plan.buffer_of[size_t(j)] >= 0)
        free.push_back(plan.buffer_of[size_t(j)]);
    if (plan.buffer_of[i] >= 0 && last_read[i] <= i) free.push_back(plan.buffer_of[i]);  // unread
  }
  return plan;
}

// The arena's buffers, each as large as the largest layer output at full resolution (a backend
// that does not fuse the pool writes that much), and input slot 0.
void Model::allocate_arena() {
  const ArenaPlan plan = plan_arena(layers_);
  buffer_of_ = plan.buffer_of;
  int64_t largest = 3 * int64_t(spec_.input_size) * spec_.input_size;
  for (const LayerDesc& l : layers_) largest = std::max(largest, l.unpooled_elements());
  const size_t elem = dtype_size(backend_.compute_dtype());
  const int64_t S = spec_.input_size;
  const size_t arena_bytes = size_t(largest) * max_batch_ * elem,
               input_bytes = size_t(3 * S * S) * max_batch_ * elem;
  try {
    for (int b = 0; b < plan.buffers; ++b) arena_.push_back(backend_.allocate(arena_bytes));
    allocate_input(0);
  } catch (const Error& e) {
    fail_device("batch size " + std::to_string(max_batch_) + " needs " +
                std::to_string((plan.buffers * arena_bytes + input_bytes) >> 20) +
                " MiB for activations on " + backend_.name() + " (" + e.what() +
                "); use a smaller {{batch}}");
  }
}

const Tensor& Model::input(int slot) {
  if (slot < 0 || slot >= kInputSlots) fail("input slot " + std::to_string(slot) + " outside 0..1");
  if (!input_buf_[slot].data()) {
    try {
      allocate_input(slot);
    } catch (const Error& e) {
      fail_device("batch size " + std::to_string(max_batch_) + " needs a second input buffer on " +
                  backend_.name() + " (" + e.what() + "); use a smaller {{batch}}");
    }
  }
  return input_[slot];
}

void Model::allocate_input(int slot) {
  const int64_t S = spec_.input_size;
  input_buf_[slot] =
      backend_.allocate(size_t(3 * S * S) * max_batch_ * dtype_size(backend_.compute_dtype()));
  input_[slot] =
      Tensor::view(input_buf_[slot], act_shape(backend_.activation_layout(), max_batch_, 3, S, S),
                   backend_.compute_dtype(), backend_.activation_layout());
}

Tensor Model::layer_output(size_t i, int n) const {
  const LayerDesc& l = layers_.at(i);
  if (l.logits) return logits_.slice(0, n);
  return activation(buffer_of_[i], l.output_shape(n, backend_.activation_layout()));
}

Tensor Model::activation(int buffer, std::vector<int64_t> shape) const {
  Layout layout = shape.size() == 4 ? backend_.activation_layout() : Layout::Plain;
  return Tensor::view(arena_[size_t(buffer)], std::move(shape), backend_.compute_dtype(), layout);
}

void Model::forward(std::span<const ImageView> frames, std::span<const CropRect> crops,
                    const LayerHook& hook) {
  const int n = int(frames.size());
  check_batch(n);
  backend_.preprocess(frames, crops, spec_.preprocess, input(0).slice(0, n));
  if (hook) hook("preprocess");
  frame_stage(n, hook);
}

void Model::forward(std::span<const Frame> frames, std::span<const CropRect> crops,
                    const LayerHook& hook) {
  preprocess(frames, crops);
  if (hook) hook("preprocess");
  frame_stage(int(frames.size()), hook);
}

void Model::preprocess(std::span<const Frame> frames, std::span<const CropRect> crops, int slot) {
  const int n = int(frames.size());
  check_batch(n);
  if (int(crops.size()) != n) fail("forward: one crop per frame is needed");
  const Tensor& in = input(slot);
  for (int first = 0; first < n;) {
    int end = first + 1;
    const bool yuv = frames[first].is_yuv;
    const ColorSpec cs = frames[first].color;
    while (end < n && frames[end].is_yuv == yuv &&
           (!yuv ||
            (frames[end].color.bt709 == cs.bt709 && frames[end].color.full_range == cs.full_range)))
      ++end;
    const Tensor out = in.slice(first, end - first);
    const auto run_crops = crops.subspan(first, end - first);
    if (yuv) {
      std::vector<YuvView> views;
      for (int i = first; i < end; ++i) views.push_back(frames[i].yuv_view());
      backend_.preprocess_yuv420(views, run_crops, cs, spec_.preprocess, out);
    } else {
      std::vector<ImageView> views;
      for (int i = first; i < end; ++i) views.push_back(frames[i].view());
      backend_.preprocess(views, run_crops, spec_.preprocess, out);
    }
    first = end;
  }
}

Model::~Model() {
  if (GraphReplay* graphs = backend_.graph_replay()) graphs->forget_replays(this);
}

void Model::check_batch(int n) const {
  if (n < 1 || n > max_batch_)
    fail("batch of " + std::to_string(n) + " frames outside 1.." + std::to_string(max_batch_));
}

void Model::frame_stage(int n, const LayerHook& hook, int slot) {
  check_batch(n);
  input(slot);  // checks the slot, allocates it when new
  GraphReplay* graphs = backend_.graph_replay();
  if (hook || !graphs) {
    run_layers(n, hook, slot);
    return;
  }
  graphs->replay(this, int64_t(slot) << 32 | n, [&] { run_layers(n, {}, slot); });
}

Tensor Model::forward_features(std::span<const ImageView> frames, std::span<const CropRect> crops) {
  const int n = int(frames.size());
  check_batch(n);
  if (!features_) fail("internal error: forward_features on a model made without features");
  if (int(crops.size()) != n) fail("forward: one crop per frame is needed");
  backend_.preprocess(frames, crops, spec_.preprocess, input(0).slice(0, n));
  return run_layers(n, {}, 0, /*features=*/true);
}

Tensor Model::run_layers(int n, const LayerHook& hook, int slot, bool features) {
  const Layout layout = backend_.activation_layout();
  const size_t end = features ? size_t(last_conv_) + 1 : layers_.size();
  std::vector<Tensor> out(end);
  std::vector<Tensor> x;
  for (size_t i = 0; i < end; ++i) {
    const bool unpooled = features && int(i) == last_conv_;
    const LayerDesc& l = unpooled ? features_desc_ : layers_[i];
    x.clear();
    if (l.inputs.empty()) x.push_back(i == 0 ? input_[slot].slice(0, n) : out[i - 1]);
    for (int j : l.inputs) x.push_back(j < 0 ? input_[slot].slice(0, n) : out[size_t(j)]);
    const Tensor y =
        l.logits ? logits_.slice(0, n) : activation(buffer_of_[i], l.output_shape(n, layout));
    PreparedLayer& layer = unpooled ? *features_ : *prepared_[i];
    in_layer(l.name, [&] { layer.run(x, y); });
    if (hook) hook(l.name);
    out[i] = y;
  }
  if (features) return out.back();
  in_layer("softmax", [&] {
    backend_.softmax_argmax(logits_.slice(0, n), probs_.slice(0, n), labels_.slice(0, n));
  });
  if (hook) hook("softmax");
  return logits_.slice(0, n);
}

}  // namespace fervid
