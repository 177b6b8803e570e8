// The label of a frame's logits, one rule for every backend: the lowest index of the largest
// value; a NaN never counts, so a NaN logit 0 does not win by default; a row with no number in it
// (every logit NaN) gets label 0. So every label is in [0, C), whatever the logits hold (all -inf
// gives 0, the lowest of equal maxima). kernels/cpu/softmax_argmax.cpp scans a row with it;
// kernels/cuda/softmax_argmax.cu scans each lane's strided share, then merges lanes pairwise in
// any order (label_merge is associative and commutative), which gives the same label.
#pragma once

#if defined(__CUDACC__)
#define FV_HOST_DEVICE __host__ __device__
#else
#define FV_HOST_DEVICE
#endif

namespace fervid {

// The best logit seen so far and its index; index < 0: none yet (nothing, or only NaN).
struct LabelCandidate {
  float value;
  int index;
};

FV_HOST_DEVICE inline LabelCandidate no_label() { return {0.0f, -1}; }

// Whether logit `v` at index `i` is a better label than `best`.
FV_HOST_DEVICE inline bool label_beats(float v, int i, LabelCandidate best) {
  if (v != v) return false;  // NaN
  if (best.index < 0) return true;
  return v > best.value || (v == best.value && i < best.index);
}

FV_HOST_DEVICE inline LabelCandidate label_merge(LabelCandidate a, LabelCandidate b) {
  return b.index >= 0 && label_beats(b.value, b.index, a) ? b : a;
}

FV_HOST_DEVICE inline int label_of(LabelCandidate c) { return c.index < 0 ? 0 : c.index; }

// The label of a row of `c` logits scanned in order (the CPU's softmax, Grad-CAM's default class).
template <typename T>
inline int label_of_row(const T* l, int c) {
  int best = -1;
  for (int j = 0; j < c; ++j)
    if (l[j] == l[j] && (best < 0 || l[j] > l[best])) best = j;  // l[j] == l[j]: not NaN
  return best < 0 ? 0 : best;
}

}  // namespace fervid
