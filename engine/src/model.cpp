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

Model::Model(const Weights& weights, Backend& backend, int max_batch)
    : spec_(weights.spec),
      backend_(backend),
      max_batch_(max_batch),
      conv_layers_(weights.spec.conv_layers()),
      dense_layers_(weights.spec.dense_layers()) {
  for (size_t i = 0; i < conv_layers_.size(); ++i) {
    conv_w_.push_back(backend.prepare_weight(weights.conv[i].weight.tensor, {WeightRole::Conv}));
    conv_b_.push_back(backend.prepare_weight(weights.conv[i].bias.tensor, {WeightRole::ConvBias}));
  }
  for (size_t i = 0; i < dense_layers_.size(); ++i) {
    WeightUse use{WeightRole::Linear};
    use.flatten_channels = i == 0 && spec_.head != Head::Gap ? spec_.feature_channels() : 0;
    use.logits = i + 1 == dense_layers_.size();
    dense_w_.push_back(backend.prepare_weight(weights.dense[i].weight.tensor, use));
    use.role = WeightRole::LinearBias;
    dense_b_.push_back(backend.prepare_weight(weights.dense[i].bias.tensor, use));
  }
  // Plan the arena once: two activation buffers, each as large as the largest layer output at
  // full resolution (a backend that does not fuse the pool writes that much).
  const size_t elem = dtype_size(backend.compute_dtype());
  int64_t largest = 3 * int64_t(spec_.input_size) * spec_.input_size, s = spec_.input_size;
  for (const auto& l : conv_layers_) {
    largest = std::max(largest, int64_t(l.out_channels) * s * s);
    if (l.pool) s /= 2;
  }
  for (const auto& l : dense_layers_) largest = std::max<int64_t>(largest, l.out_features);
  const int64_t S = spec_.input_size, c = spec_.num_classes();
  const size_t arena_bytes = size_t(largest) * max_batch * elem,
               input_bytes = size_t(3 * S * S) * max_batch * elem;
  try {
    for (auto& b : arena_) b = backend.allocate(arena_bytes);
    allocate_input(0);
  } catch (const Error& e) {
    fail_device("batch size " + std::to_string(max_batch) + " needs " +
                std::to_string((2 * arena_bytes + input_bytes) >> 20) + " MiB for activations on " +
                backend.name() + " (" + e.what() + "); use a smaller --batch");
  }
  // logits, probs (f32) and labels (i32) side by side in one buffer
  head_buf_ = backend.allocate(size_t(max_batch) * (2 * c * 4 + 4) + 64);
  char* base = static_cast<char*>(head_buf_.data());
  logits_ = Tensor(base, {max_batch, c}, DType::F32, Layout::Plain, head_buf_.device());
  probs_ = Tensor(base + max_batch * c * 4, {max_batch, c}, DType::F32, Layout::Plain,
                  head_buf_.device());
  labels_ = Tensor(base + 2 * max_batch * c * 4, {max_batch}, DType::I32, Layout::Plain,
                   head_buf_.device());
}

const Tensor& Model::input(int slot) {
  if (slot < 0 || slot >= kInputSlots) fail("input slot " + std::to_string(slot) + " outside 0..1");
  if (!input_buf_[slot].data()) {
    try {
      allocate_input(slot);
    } catch (const Error& e) {
      fail_device("batch size " + std::to_string(max_batch_) + " needs a second input buffer on " +
                  backend_.name() + " (" + e.what() + "); use a smaller --batch");
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

Tensor Model::activation(int which, std::vector<int64_t> shape) const {
  Layout layout = shape.size() == 4 ? backend_.activation_layout() : Layout::Plain;
  return Tensor::view(arena_[which], std::move(shape), backend_.compute_dtype(), layout);
}

void Model::forward(std::span<const ImageView> frames, std::span<const CropRect> crops,
                    const LayerHook& hook) {
  const int n = int(frames.size());
  check_batch(n);
  backend_.preprocess(frames, crops, spec_.preprocess, input(0).slice(0, n));
  if (hook) hook("preprocess");
  forward_preprocessed(n, hook);
}

void Model::forward(std::span<const Frame> frames, std::span<const CropRect> crops,
                    const LayerHook& hook) {
  preprocess(frames, crops);
  if (hook) hook("preprocess");
  forward_preprocessed(int(frames.size()), hook);
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

void Model::forward_preprocessed(int n, const LayerHook& hook, int slot) {
  check_batch(n);
  input(slot);  // checks the slot, allocates it when new
  GraphReplay* graphs = backend_.graph_replay();
  if (hook || !graphs) return run_layers(n, hook, slot);
  graphs->replay(this, int64_t(slot) << 32 | n, [&] { run_layers(n, {}, slot); });
}

Tensor Model::run_convs(int n, const LayerHook& hook, int slot, bool last_pool, int& which) {
  const Layout layout = backend_.activation_layout();
  Tensor x = input_[slot].slice(0, n);
  int s = spec_.input_size;
  which = 0;
  for (size_t i = 0; i < conv_layers_.size(); ++i) {
    const ConvLayer& l = conv_layers_[i];
    const bool pool = l.pool && (last_pool || i + 1 < conv_layers_.size());
    const int out_s = pool ? s / 2 : s;
    Tensor y = activation(which, act_shape(layout, n, l.out_channels, out_s, out_s));
    in_layer(l.name,
             [&] { backend_.conv3x3_bias_relu(x, conv_w_[i].tensor, conv_b_[i].tensor, pool, y); });
    if (hook) hook(l.name);
    x = y;
    which ^= 1;
    s = out_s;
  }
  return x;
}

Tensor Model::forward_features(std::span<const ImageView> frames, std::span<const CropRect> crops) {
  const int n = int(frames.size());
  check_batch(n);
  if (int(crops.size()) != n) fail("forward: one crop per frame is needed");
  backend_.preprocess(frames, crops, spec_.preprocess, input(0).slice(0, n));
  int which = 0;
  return run_convs(n, {}, 0, /*last_pool=*/false, which);
}

void Model::run_layers(int n, const LayerHook& hook, int slot) {
  int which = 0;
  Tensor x = run_convs(n, hook, slot, /*last_pool=*/true, which);
  if (spec_.head == Head::Gap) {
    Tensor y = activation(which, {n, spec_.feature_channels()});
    in_layer("gap", [&] { backend_.global_avgpool(x, y); });
    if (hook) hook("gap");
    x = y;
    which ^= 1;
  }
  for (size_t i = 0; i < dense_layers_.size(); ++i) {
    const DenseLayer& l = dense_layers_[i];
    const bool last = i + 1 == dense_layers_.size();
    Tensor y = last ? logits_.slice(0, n) : activation(which, {n, l.out_features});
    const std::string name = "fc" + std::to_string(i + 1);
    in_layer(name, [&] { backend_.linear(x, dense_w_[i].tensor, dense_b_[i].tensor, l.relu, y); });
    if (hook) hook(name);
    x = y;
    which ^= 1;
  }
  in_layer("softmax", [&] {
    backend_.softmax_argmax(logits_.slice(0, n), probs_.slice(0, n), labels_.slice(0, n));
  });
  if (hook) hook("softmax");
}

}  // namespace fervid
