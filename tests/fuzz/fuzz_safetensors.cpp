// Fuzz target for the safetensors parser and the checkpoint key maps (libFuzzer entry point).
//
// Every input is treated as a whole safetensors file (SafetensorsFile::from_bytes). The contract under
// test: any byte string either opens with consistent data or throws a jepa::Error — never a crash, a
// hang, an out-of-bounds read (AddressSanitizer) or undefined behaviour (UBSan). On files that open,
// it also reads every tensor with every applicable conversion, views it in place, scans it for
// non-finite values, checks the content hash, loads the float tensors with read_into, splits the file
// into checkpoint sections (official and Hugging Face naming), describes each section and loads a small
// layout from it.
//
// Build with clang (-DJEPA_BUILD_FUZZERS=ON) for a libFuzzer binary, or with any compiler together with
// replay_main.cpp, which runs the seed corpus tests/fuzz/corpus/safetensors as a CTest. See
// tools/README.md ("Fuzzing the safetensors parser") for longer runs.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "jepa/io/safetensors.hpp"
#include "jepa/models/checkpoint_keys.hpp"

namespace {

using namespace jepa;

void exercise_tensors(const io::SafetensorsFile& f) {
  std::size_t pos = 0;
  for (const io::TensorInfo& t : f.tensors()) {
    if (t.begin != pos || t.bytes() != t.numel() * io::safetensors_dtype_size(t.dtype)) __builtin_trap();  // invariant
    pos = t.end;
    const auto raw = f.raw(t.name);
    volatile std::uint8_t sink = 0;
    for (const std::byte b : raw) sink = sink ^ static_cast<std::uint8_t>(b);
    try { (void)f.read<double>(t.name); } catch (const Error&) {}
    try { (void)f.read<float>(t.name); } catch (const Error&) {}
    try { (void)f.read<std::int64_t>(t.name); } catch (const Error&) {}
    try { (void)f.read<std::uint8_t>(t.name); } catch (const Error&) {}
    try { (void)f.view<float>(t.name); } catch (const Error&) {}
    try { (void)f.view<bf16>(t.name); } catch (const Error&) {}
    if (t.numel() >= 2) {
      std::vector<float> two(2);
      try { f.read_range<float>(t.name, t.numel() - 2, two.data(), 2); } catch (const Error&) {}
    }
    std::vector<float> one(1);
    try { f.read_range<float>(t.name, t.numel(), one.data(), 1); } catch (const Error&) {}  // past the end: throws
    const auto bad = f.find_non_finite(t.name);
    if (bad && *bad >= t.numel()) __builtin_trap();  // invariant: an element of the tensor
    try { f.require_finite(t.name, t.numel() / 2); } catch (const Error&) {}
    try { (void)f.find_non_finite(t.name, t.numel(), 1); } catch (const Error&) {}  // past the end: throws
  }
  try { (void)f.verify_content_hash(); } catch (const Error&) {}
  // read_into over every tensor readable as a parameter: a NaN or Inf throws before anything is written.
  nn::ParamLayout L;
  for (const io::TensorInfo& t : f.tensors())
    if (io::detail::is_float_dtype(t.dtype) && !L.contains(t.name) && t.numel() <= (std::size_t{1} << 16))
      try { L.add(t.name, t.shape, nn::Init::zeros); } catch (const Error&) {}
  std::vector<double> P(L.numel());
  try { (void)f.read_into(L, P.data()); } catch (const Error&) {}
  if (pos != f.data_size()) __builtin_trap();
  try { (void)f.info("\xff no such tensor"); } catch (const Error&) {}
  for (const auto& [k, v] : f.metadata()) (void)k.size(), (void)v.size();
}

void exercise_checkpoint(io::SafetensorsFile f) {
  const models::Checkpoint ck(std::move(f));
  nn::ParamLayout L;
  L.add("patch_embed.proj.weight", {4, 3, 2, 2, 2}, nn::Init::zeros);
  L.add("blocks.0.norm1.weight", {4}, nn::Init::zeros);
  L.add("blocks.0.attn.qkv.weight", {12, 4}, nn::Init::zeros);
  L.add("mask_tokens.1", {1, 1, 4}, nn::Init::zeros);
  L.add("norm.weight", {4}, nn::Init::zeros);
  std::vector<float> P(L.numel());
  for (const auto& s : ck.sections()) {
    (void)models::describe_encoder(s);
    (void)models::describe_predictor(s);
    (void)models::describe_probe(s);
    models::WeightsOptions o;
    o.section = s.name;
    o.strict = false;
    o.allow_missing = {"*"};
    try { (void)ck.load(L, P.data(), o, "fuzz model", models::describe_encoder); } catch (const Error&) {}
    o.strict = true;
    o.allow_missing = {};
    try { (void)ck.load(L, P.data(), o); } catch (const Error&) {}
  }
  models::WeightsOptions none;
  none.prefer = {"encoder", "target_encoder", ""};
  try { (void)ck.load(L, P.data(), none); } catch (const Error&) {}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto f = io::SafetensorsFile::from_bytes(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size), "fuzz input");
    exercise_tensors(f);
    exercise_checkpoint(std::move(f));
  } catch (const jepa::Error&) {
    // A clean rejection is the expected outcome for most inputs.
  }
  return 0;
}
