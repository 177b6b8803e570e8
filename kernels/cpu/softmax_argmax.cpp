// softmax_argmax (CPU reference): per frame, probs = softmax(logits) (minus the label's logit,
// sum in f64) and the label of fervid/label_rule.h: the lowest index among equal maxima, NaN never
// counted, label 0 for a row of NaN.
// Layout: logits [N,C] f32 -> probs [N,C] f32, labels [N] i32.
#include <cmath>

#include "cpu/check.h"
#include "cpu/ops.h"
#include "fervid/label_rule.h"

namespace fervid::cpu {

void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels) {
  constexpr const char* op = "softmax_argmax";
  if (logits.rank() != 2) fail(std::string(op) + ": logits must be rank 2");
  const int64_t n = logits.dim(0), c = logits.dim(1);
  expect(logits, {n, c}, DType::F32, op, "logits");
  expect(probs, {n, c}, DType::F32, op, "probs");
  expect(labels, {n}, DType::I32, op, "labels");
  for (int64_t i = 0; i < n; ++i) {
    const float* l = logits.ptr<const float>() + i * c;
    float* p = probs.ptr<float>() + i * c;
    const int best = label_of_row(l, int(c));
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(double(l[j]) - double(l[best]));
    for (int64_t j = 0; j < c; ++j) p[j] = float(std::exp(double(l[j]) - double(l[best])) / sum);
    labels.ptr<int32_t>()[i] = best;
  }
}

}  // namespace fervid::cpu
