// cuda::AdamW (with gradient clipping and the zero-gradient skip), cuda::ParamTable::grad_norm and
// cuda::ema_update against train::AdamW / clip_grad_norm / grad_norm / ema_update on the host.
// Both sides evaluate scalar::adamw_step and scalar::ema_lerp in double; the only difference is the
// order of the Σg² summation (hence the clip coefficient's last bits), so the bands are tight:
//   grad norm 1e-12 relative; parameters and moments after 3 steps 1e-6; EMA 1e-7.
#include "common.cuh"

#include "jepa/backend/cuda/optim.cuh"
#include "jepa/train/optim.hpp"

namespace {
using namespace jepa::test::gpu;
using jepa::nn::Init;
using jepa::nn::ParamLayout;
using jepa::nn::ParameterSet;

ParamLayout encoder_layout() {
  ParamLayout l;
  l.add("patch_embed.proj.weight", jepa::Shape{37, 29}, Init::trunc_normal);
  l.add("patch_embed.proj.bias", jepa::Shape{37}, Init::zeros);
  l.add("blocks.0.mlp.fc1.weight", jepa::Shape{300, 70}, Init::trunc_normal);  // 21000: two chunks
  l.add("blocks.0.norm1.weight", jepa::Shape{70}, Init::ones);
  l.add("mask_token", jepa::Shape{1, 1, 16}, Init::trunc_normal);  // zero gradient: skipped
  return l;
}
ParamLayout predictor_layout() {
  ParamLayout l;
  l.add("predictor_embed.weight", jepa::Shape{19, 70}, Init::trunc_normal);
  l.add("predictor_embed.bias", jepa::Shape{19}, Init::zeros);
  return l;
}

/// Random gradients on every tensor except `mask_token` (and the padding), which stay zero.
void fill_grads(ParameterSet<float>& g, std::uint64_t seed) {
  g.zero();
  for (const auto& p : g.layout().params()) {
    if (p.name == "mask_token") continue;
    jepa::test::fill_normal(g.data() + p.offset, p.numel(), seed++, 0.5);
  }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_optim)

BOOST_AUTO_TEST_CASE(adamw_with_clipping_matches_train_adamw) {
  const ParamLayout le = encoder_layout(), lp = predictor_layout();
  ParameterSet<float> pe(le), pp(lp), ge(le), gp(lp);
  pe.init(1);
  pp.init(2);
  const auto pe0 = std::vector<float>(pe.data(), pe.data() + pe.numel());
  auto dpe = cu::to_device(pe0);
  auto dpp = cu::to_device(std::vector<float>(pp.data(), pp.data() + pp.numel()));
  cu::DeviceBuffer<float> dge(ge.numel()), dgp(gp.numel());
  cu::DeviceBuffer<jepa::bf16> dbe(pe.numel()), dbp(pp.numel());

  jepa::train::AdamW<float> cpu({{&pe, &ge}, {&pp, &gp}});
  cu::AdamW gpu(cu::ParamTable::from_layouts({&le, &lp}));
  BOOST_TEST(gpu.table().tensors() == 7u);
  BOOST_TEST(gpu.table().chunks() == 8u);
  cu::Stream stream;

  const double max_norms[] = {1.0, 0.0, 1e6};  // clipped, no clipping, clipping inactive
  for (int step = 0; step < 3; ++step) {
    fill_grads(ge, 100 + 10 * step);
    fill_grads(gp, 200 + 10 * step);
    cu::copy_to_device(dge.data(), ge.data(), ge.numel(), stream);
    cu::copy_to_device(dgp.data(), gp.data(), gp.numel(), stream);
    const double lr = 1e-3 * (step + 1), wd = 0.04;

    std::vector<ParameterSet<float>*> grads{&ge, &gp};
    const double cpu_norm = max_norms[step] > 0 ? jepa::train::clip_grad_norm(grads, max_norms[step])
                                                : jepa::train::grad_norm(grads);
    cpu.step(lr, wd);

    float* ps[] = {dpe.data(), dpp.data()};
    const float* gs[] = {dge.data(), dgp.data()};
    jepa::bf16* bs[] = {dbe.data(), dbp.data()};
    gpu.step(ps, gs, lr, wd, max_norms[step], stream, bs);
    const auto gn = gpu.table().last_grad_norm(stream);
    BOOST_TEST_INFO("step " << step);
    BOOST_TEST(std::abs(gn.norm - cpu_norm) <= 1e-12 * cpu_norm);
  }
  stream.synchronize();
  const auto gpe = cu::to_host(dpe.data(), pe.numel()), gpp = cu::to_host(dpp.data(), pp.numel());
  BOOST_TEST(jepa::test::rel_error(gpe.data(), pe.data(), pe.numel()) < 1e-6);
  BOOST_TEST(jepa::test::rel_error(gpp.data(), pp.data(), pp.numel()) < 1e-6);
  const auto gm = cu::to_host(gpu.first_moment(0), pe.numel()), gv = cu::to_host(gpu.second_moment(0), pe.numel());
  BOOST_TEST(jepa::test::rel_error(gm.data(), cpu.first_moments()[0].data(), pe.numel()) < 1e-6);
  BOOST_TEST(jepa::test::rel_error(gv.data(), cpu.second_moments()[0].data(), pe.numel()) < 1e-6);

  // The tensor with zero gradient was skipped: no weight decay, no moments.
  const auto& mt = le.find("mask_token");
  for (std::size_t i = mt.offset; i < mt.offset + mt.numel(); ++i) {
    BOOST_TEST(gpe[i] == pe0[i]);
    BOOST_TEST(gm[i] == 0.f);
  }
  // The bf16 copy is the rounded update.
  const auto gbe = cu::to_host(dbe.data(), pe.numel());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < pe.numel(); ++i) mismatches += gbe[i].bits != jepa::bf16(gpe[i]).bits;
  BOOST_TEST(mismatches == 0u);
}

BOOST_AUTO_TEST_CASE(grad_norm_is_bitwise_reproducible) {
  const ParamLayout le = encoder_layout();
  ParameterSet<float> ge(le);
  fill_grads(ge, 5);
  auto dge = cu::to_device(std::vector<float>(ge.data(), ge.data() + ge.numel()));
  cu::ParamTable table = cu::ParamTable::from_layouts({&le});
  const float* gs[] = {dge.data()};
  table.grad_norm(gs, 0.5, nullptr);
  const auto a = table.last_grad_norm(nullptr);
  table.grad_norm(gs, 0.5, nullptr);
  const auto b = table.last_grad_norm(nullptr);
  BOOST_TEST(std::memcmp(&a, &b, sizeof a) == 0);
  const double n = jepa::train::grad_norm(std::vector<ParameterSet<float>*>{&ge});
  BOOST_TEST(std::abs(a.norm - n) <= 1e-12 * n);
  BOOST_TEST(std::abs(a.clip_coef - 0.5 / (n + 1e-6)) <= 1e-12);
}

BOOST_AUTO_TEST_CASE(ema_matches_train_ema) {
  const ParamLayout le = encoder_layout();
  ParameterSet<float> target(le), online(le);
  target.init(3);
  online.init(4);
  auto dt = cu::to_device(std::vector<float>(target.data(), target.data() + target.numel()));
  auto dO = cu::to_device(std::vector<float>(online.data(), online.data() + online.numel()));
  cu::DeviceBuffer<jepa::bf16> db(target.numel());
  for (double m : {0.996, 0.9995}) {
    jepa::train::ema_update(target, online, m);
    cu::ema_update(dt.data(), dO.data(), static_cast<jepa::index_t>(target.numel()), m, nullptr, db.data());
  }
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  const auto gt = cu::to_host(dt.data(), target.numel());
  BOOST_TEST(jepa::test::rel_error(gt.data(), target.data(), target.numel()) < 1e-7);
  const auto gb = cu::to_host(db.data(), target.numel());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < gt.size(); ++i) mismatches += gb[i].bits != jepa::bf16(gt[i]).bits;
  BOOST_TEST(mismatches == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
