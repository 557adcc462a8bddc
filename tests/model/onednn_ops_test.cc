#include "common/model/onednn_ops.h"

#include <gtest/gtest.h>

#include <thread>

namespace fedmed {
namespace {

// Gradients of sum(out * weight) with respect to `inputs`, out = f(inputs).
template <typename F>
std::vector<torch::Tensor> Gradients(F f, std::vector<torch::Tensor> inputs,
                                     const torch::Tensor& out_weight) {
  for (torch::Tensor& t : inputs) t = t.detach().clone().requires_grad_(true);
  const torch::Tensor out = f(inputs);
  (out * out_weight).sum().backward();
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& t : inputs) grads.push_back(t.grad());
  return grads;
}

TEST(OneDnnOpsTest, MaxPoolEqualsLibTorchsBitForBitForwardAndBackward) {
  torch::manual_seed(1);
  // After a ReLU, as in the cnn: many windows hold zeros, some only zeros.
  const torch::Tensor x = torch::relu(torch::randn({5, 7, 24, 18}));
  const torch::Tensor ours = OneDnnMaxPool2x2(x);
  const torch::Tensor reference = torch::max_pool2d(x, 2);
  ASSERT_EQ(ours.sizes(), reference.sizes());
  EXPECT_TRUE(torch::equal(ours, reference));

  const torch::Tensor w = torch::randn(reference.sizes());
  const auto g_ours = Gradients([](auto& in) { return OneDnnMaxPool2x2(in[0]); }, {x}, w);
  const auto g_ref = Gradients([](auto& in) { return torch::max_pool2d(in[0], 2); }, {x}, w);
  // Where a window's maximum is tied (all zeros), each library routes the gradient to one of
  // the tied inputs; a ReLU before the pool makes those gradients zero either way. Compare after
  // that mask, and exactly elsewhere.
  const torch::Tensor positive = x > 0;
  EXPECT_TRUE(torch::equal(g_ours[0] * positive, g_ref[0] * positive));
}

TEST(OneDnnOpsTest, MaxPoolWithoutGradientsAndOnANonContiguousInput) {
  torch::manual_seed(2);
  const torch::Tensor x = torch::randn({3, 4, 10, 12}).transpose(2, 3);  // (3, 4, 12, 10)
  ASSERT_FALSE(x.is_contiguous());
  {
    c10::InferenceMode inference;
    EXPECT_TRUE(torch::equal(OneDnnMaxPool2x2(x), torch::max_pool2d(x, 2)));
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor y = OneDnnMaxPool2x2(x.clone().requires_grad_(true));
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(torch::equal(y, torch::max_pool2d(x, 2)));
}

TEST(OneDnnOpsTest, MaxPoolLeavesOddSizesAndOtherDtypesToLibTorch) {
  torch::manual_seed(3);
  const torch::Tensor odd = torch::randn({2, 3, 9, 8});
  EXPECT_EQ(OneDnnMaxPool2x2(odd).sizes(), torch::IntArrayRef({2, 3, 4, 4}));
  EXPECT_TRUE(torch::equal(OneDnnMaxPool2x2(odd), torch::max_pool2d(odd, 2)));
  const torch::Tensor doubles = torch::randn({2, 3, 8, 8}, torch::kDouble);
  EXPECT_TRUE(torch::equal(OneDnnMaxPool2x2(doubles), torch::max_pool2d(doubles, 2)));
  EXPECT_THROW(OneDnnMaxPool2x2(torch::randn({4, 4})), c10::Error);
}

TEST(OneDnnOpsTest, LinearMatchesAFloat64ReferenceForwardAndBackward) {
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({32, 300}), w = torch::randn({17, 300}) * 0.05,
                      b = torch::randn({17});
  const torch::Tensor ours = OneDnnLinear(x, w, b);
  const torch::Tensor exact =
      torch::linear(x.to(torch::kDouble), w.to(torch::kDouble), b.to(torch::kDouble));
  ASSERT_EQ(ours.sizes(), exact.sizes());
  EXPECT_LT((ours.to(torch::kDouble) - exact).abs().max().item<double>(), 1e-5);

  const torch::Tensor out_weight = torch::randn({32, 17});
  const auto g_ours =
      Gradients([](auto& in) { return OneDnnLinear(in[0], in[1], in[2]); }, {x, w, b}, out_weight);
  const auto g_exact = Gradients(
      [](auto& in) { return torch::linear(in[0], in[1], in[2]); },
      {x.to(torch::kDouble), w.to(torch::kDouble), b.to(torch::kDouble)},
      out_weight.to(torch::kDouble));
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(g_ours[i].sizes(), g_exact[i].sizes()) << "input " << i;
    EXPECT_LT((g_ours[i].to(torch::kDouble) - g_exact[i]).abs().max().item<double>(), 1e-4)
        << "input " << i;
  }
}

TEST(OneDnnOpsTest, LinearComputesOnlyTheGradientsAsked) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({4, 6});  // an input image batch: no gradient
  const torch::Tensor w = torch::randn({3, 6}).requires_grad_(true);
  const torch::Tensor b = torch::zeros({3}).requires_grad_(true);
  OneDnnLinear(x, w, b).sum().backward();
  EXPECT_FALSE(x.grad().defined());
  ASSERT_TRUE(w.grad().defined());
  EXPECT_TRUE(torch::allclose(w.grad(), x.sum(0).expand({3, 6})));
  EXPECT_TRUE(torch::allclose(b.grad(), torch::full({3}, 4.0f)));
}

TEST(OneDnnOpsTest, LinearRefusesMismatchedShapesAsLibTorchDoes) {
  EXPECT_THROW(OneDnnLinear(torch::randn({2, 5}), torch::randn({3, 4}), torch::randn({3})),
               c10::Error);
}

TEST(OneDnnOpsTest, MatMulWithEveryTransposition) {
  torch::manual_seed(6);
  const torch::Tensor a = torch::randn({7, 5}), b = torch::randn({5, 9});
  const torch::Tensor exact = torch::mm(a.to(torch::kDouble), b.to(torch::kDouble));
  const auto close = [&](const torch::Tensor& t) {
    return t.sizes() == exact.sizes() &&
           (t.to(torch::kDouble) - exact).abs().max().item<double>() < 1e-5;
  };
  EXPECT_TRUE(close(OneDnnMatMul(a, b, false, false)));
  EXPECT_TRUE(close(OneDnnMatMul(a.t().contiguous(), b, true, false)));
  EXPECT_TRUE(close(OneDnnMatMul(a, b.t().contiguous(), false, true)));
  EXPECT_TRUE(close(OneDnnMatMul(a.t().contiguous(), b.t().contiguous(), true, true)));
  EXPECT_TRUE(close(OneDnnMatMul(a.t(), b, true, false)));  // a non-contiguous operand
  EXPECT_THROW(OneDnnMatMul(a, a, false, false), c10::Error);
}

TEST(OneDnnOpsTest, AgreesWithLibTorchOnSeveralThreadsAtOnce) {
  torch::manual_seed(7);
  const torch::Tensor x = torch::randn({8, 16, 12, 12});
  const torch::Tensor expected = torch::max_pool2d(x, 2);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      bool all = true;
      for (int i = 0; i < 20; ++i) all = all && torch::equal(OneDnnMaxPool2x2(x), expected);
      ok[static_cast<size_t>(t)] = all;
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[static_cast<size_t>(t)], 1) << "thread " << t;
}

}  // namespace
}  // namespace fedmed
