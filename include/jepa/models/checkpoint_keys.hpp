// jepa/models/checkpoint_keys.hpp — released checkpoints onto the library's modules: sections,
// prefixes, the official and Hugging Face key namings, shape checks that name the fitting preset.
// Opt-in (needs jepa/io/safetensors.hpp: POSIX + nlohmann-json); not part of jepa.hpp.
//
// Where keys come from (recipe_facts §8.2–8.3). A released `.pt` is a dict of state dicts —
// {"encoder": …, "predictor": …, "target_encoder": …, "opt": …} (V-JEPA 2, I-JEPA), "ema_encoder" for
// the distilled 2.1 ViT-B/L, {"classifiers": [probe, …]} for probes — whose keys carry the DDP and
// pretraining wrappers: "module.backbone.blocks.0.attn.qkv.weight". tools/convert_checkpoint.py
// flattens such a dict once into one safetensors file, joining the levels with '.':
//   "encoder.module.backbone.blocks.0.attn.qkv.weight", "classifiers.0.module.pooler.query_tokens".
// Hugging Face transformers ships VJEPA2Model as safetensors directly, with its own names
// ("encoder.layer.0.attention.query.weight"). Both load here without further conversion.
//
// Sections. Checkpoint splits every key k = "<section>.<rest>" at the FIRST dot boundary after which
// the rest, with every "module" / "backbone" component removed (what the official loaders strip), starts
// with a parameter root of either naming (blocks., patch_embed., norm., norms_block., predictor_*,
// mask_tokens., pooler., linear., action_encoder., …; HF: layer., embeddings., layernorm., proj.).
// "module.backbone.blocks.0.norm1.weight" is section "" (a bare state dict); keys matching no root
// (optimizer state, scalars) belong to no section and are never loaded.
//
// Naming. A section whose keys start with layer./embeddings./layernorm. uses the HF naming; it is
// translated to the official names, so everything downstream speaks one language:
//   HF (VJEPA2Model)                                     official (recipe_facts §8.3)
//   embeddings.patch_embeddings.proj.{weight,bias}       patch_embed.proj.*
//   layer.i.attention.{query,key,value}.{weight,bias}    <blocks>.i.attn.qkv.*  = [query; key; value] along dim 0
//   layer.i.attention.proj.*, layer.i.{norm1,norm2,mlp.fc1,mlp.fc2}.*   <blocks>.i.(same)
//   layernorm.*                                          norm.*  |  predictor_norm.*
//   embeddings.predictor_embeddings.*                    predictor_embed.*
//   embeddings.mask_tokens  [M,1,1,Dp]                   mask_tokens.i = slice i along dim 0 ([1,1,Dp])
//   proj.*                                               predictor_proj.*
//   embeddings.position_embeddings                       pos_embed | predictor_pos_embed (ignored)
// where <blocks> is blocks (encoder sections) or predictor_blocks (sections with predictor_embeddings).
//
// Loading (Checkpoint::load, load_encoder, load_predictor, load_probe, load_ac_predictor): every
// parameter of a ParamLayout (named by the official keys already, nn/param.hpp) is looked up in the
// chosen section after optional renames (library prefix → official prefix; the binding point for
// modules whose names differ), and everything is validated before one value is written: presence,
// exact shape (a mismatch is an IoError naming the file key, both shapes, what the checkpoint holds and
// the preset that fits it), dtype (F32/F64/BF16/F16 convert to the parameter type). Tensors of the
// section that no parameter takes are an error in strict mode, except the known frozen buffers
// (pos_embed, predictor_pos_embed, the unused probe xattn.proj of V-JEPA 1), which are reported as
// ignored. Copies are the only cost: parameters live in the library's own aligned buffer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/io/safetensors.hpp"
#include "jepa/models/presets.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::models {

enum class KeyNaming : std::uint8_t { official, hf };

constexpr std::string_view key_naming_name(KeyNaming n) {
  return n == KeyNaming::official ? "official (V-JEPA 2 / 2.1 / 2-AC / I-JEPA state dict)" : "Hugging Face VJEPA2Model";
}

/// How one official-named tensor is assembled from the file.
struct CheckpointTensor {
  Shape shape;                    // shape after assembly
  std::vector<std::string> keys;  // file keys; more than one = concatenated along dim 0
  index_t index = -1;             // >= 0: slice `index` along dim 0 of keys[0]
};

/// One section of a checkpoint, in official names.
struct CheckpointSection {
  std::string name;  // "" = a bare state dict
  KeyNaming naming = KeyNaming::official;
  std::map<std::string, CheckpointTensor, std::less<>> tensors;  // official name → source
  std::vector<std::string> untranslated;                        // HF file keys with no official name

  bool has(std::string_view n) const { return tensors.find(n) != tensors.end(); }
  std::optional<Shape> shape(std::string_view n) const {
    const auto it = tensors.find(n);
    if (it == tensors.end()) return std::nullopt;
    return it->second.shape;
  }
  /// Number of distinct i with `<prefix><i><suffix>` present (e.g. "blocks.", ".norm1.weight").
  int count_indexed(std::string_view prefix, std::string_view suffix) const {
    int n = 0;
    while (has(jepa::detail::cat(prefix, n, suffix))) ++n;
    return n;
  }
  /// "'encoder' (official, 245 tensors)".
  std::string label() const {
    return jepa::detail::cat("'", name, "' (", naming == KeyNaming::hf ? "HF naming, " : "", tensors.size(), " tensors)");
  }
};

/// What a load did.
struct WeightsReport {
  std::string section;                  // the section loaded from
  KeyNaming naming = KeyNaming::official;
  std::size_t loaded = 0;               // parameters copied
  std::vector<std::string> missing;     // parameters absent (allowed by the options)
  std::vector<std::string> ignored;     // known frozen buffers present in the section (official names)
  std::vector<std::string> unexpected;  // section tensors no parameter took (non-strict loads only)
  std::string summary() const {
    return jepa::detail::cat(loaded, " tensors from section '", section, "' (", naming == KeyNaming::hf ? "HF" : "official",
                             " naming)", ignored.empty() ? "" : jepa::detail::cat(", ", ignored.size(), " frozen buffer(s) ignored"),
                             missing.empty() ? "" : jepa::detail::cat(", ", missing.size(), " missing (allowed)"),
                             unexpected.empty() ? "" : jepa::detail::cat(", ", unexpected.size(), " unexpected"));
  }
};

/// How a load picks the section and treats differences.
struct WeightsOptions {
  /// The section to load from ("" = a bare state dict). Unset: the first of `prefer` present.
  std::optional<std::string> section;
  /// Automatic choice, in order (load_encoder & co. fill the recipe's defaults when empty).
  std::vector<std::string> prefer;
  /// Tensors of the section that no parameter takes are an error (else reported in `unexpected`).
  bool strict = true;
  /// Parameter names that may be absent (an entry ending in '*' is a prefix).
  std::vector<std::string> allow_missing;
  /// Official names (or prefixes ending in '*') that may be present without a parameter (frozen
  /// buffers). load_* add the recipe's: pos_embed, predictor_pos_embed, the V-JEPA 1 probe's xattn.proj.
  std::vector<std::string> ignore;
  /// Parameter-name prefix renames applied before lookup: {library prefix, official prefix}. Lets a
  /// module whose names differ from the official ones bind to the official keys.
  std::vector<std::pair<std::string, std::string>> rename;
};

namespace detail {

using jepa::detail::cat;

inline std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t a = 0;
  for (;;) {
    const std::size_t b = s.find('.', a);
    out.push_back(s.substr(a, b == std::string_view::npos ? std::string_view::npos : b - a));
    if (b == std::string_view::npos) break;
    a = b + 1;
  }
  return out;
}

/// Joins parts [from, to) with '.', dropping "module" and "backbone" components when `strip`.
inline std::string join_parts(const std::vector<std::string_view>& p, std::size_t from, std::size_t to, bool strip) {
  std::string s;
  for (std::size_t i = from; i < to; ++i) {
    if (strip && (p[i] == "module" || p[i] == "backbone")) continue;
    if (!s.empty()) s.push_back('.');
    s.append(p[i]);
  }
  return s;
}

/// Whether `rest` (wrappers removed) starts with a parameter root of either naming.
inline bool is_param_root(std::string_view rest) {
  static constexpr std::string_view prefixes[] = {
      "patch_embed.", "patch_embed_img.", "blocks.", "norm.", "norms_block.", "predictor_embed.", "predictor_blocks.",
      "predictor_norm.", "predictor_proj.", "predictor_proj_context.", "mask_tokens.", "action_encoder.",
      "state_encoder.", "extrinsics_encoder.", "pooler.", "linear.",
      // Hugging Face VJEPA2Model
      "layer.", "embeddings.", "layernorm.", "proj."};
  static constexpr std::string_view exact[] = {"pos_embed", "predictor_pos_embed", "img_mod_embed", "video_mod_embed",
                                               "mask_token"};
  for (std::string_view p : prefixes)
    if (rest.starts_with(p)) return true;
  for (std::string_view e : exact)
    if (rest == e) return true;
  return false;
}

inline bool name_matches(const std::vector<std::string>& patterns, std::string_view name) {
  for (const std::string& p : patterns) {
    if (!p.empty() && p.back() == '*') {
      if (name.starts_with(std::string_view(p).substr(0, p.size() - 1))) return true;
    } else if (p == name) {
      return true;
    }
  }
  return false;
}

/// The most mask tokens an HF `embeddings.mask_tokens` stack may hold (released files have 10).
inline constexpr index_t kMaxStackedTokens = 4096;
/// Keys with more dot-separated components belong to no section (real keys have fewer than 10; the
/// bound keeps indexing linear in the header size whatever a file holds).
inline constexpr std::size_t kMaxKeyComponents = 64;

/// Translates one HF section (rest-keys → file keys) into official names.
inline void translate_hf(CheckpointSection& sec, const std::map<std::string, std::string>& rest_to_key,
                         const io::SafetensorsFile& f) {
  const bool predictor = rest_to_key.count("embeddings.predictor_embeddings.weight") != 0;
  const std::string blocks = predictor ? "predictor_blocks." : "blocks.";
  std::set<std::string> used;
  const auto put = [&](const std::string& official, const std::string& rest) {
    const std::string& key = rest_to_key.at(rest);
    sec.tensors[official] = CheckpointTensor{f.info(key).shape, {key}, -1};
    used.insert(rest);
  };
  for (const auto& [rest, key] : rest_to_key) {
    const auto parts = split_dots(rest);
    const auto tail = [&](std::size_t from) { return join_parts(parts, from, parts.size(), false); };
    if (rest.starts_with("embeddings.patch_embeddings.")) {
      put(cat("patch_embed.", tail(2)), rest);
    } else if (rest.starts_with("embeddings.predictor_embeddings.")) {
      put(cat("predictor_embed.", tail(2)), rest);
    } else if (rest == "embeddings.position_embeddings") {
      put(predictor ? "predictor_pos_embed" : "pos_embed", rest);
    } else if (rest == "embeddings.mask_tokens") {
      const Shape& s = f.info(key).shape;
      if (s.rank() < 1 || s[0] > kMaxStackedTokens) continue;  // left untranslated: reported
      const Shape one(std::vector<index_t>(s.dims.begin() + 1, s.dims.end()));
      for (index_t i = 0; i < s[0]; ++i) sec.tensors[cat("mask_tokens.", i)] = CheckpointTensor{one, {key}, i};
      used.insert(rest);
    } else if (rest.starts_with("layernorm.")) {
      put(cat(predictor ? "predictor_norm." : "norm.", tail(1)), rest);
    } else if (predictor && rest.starts_with("proj.")) {
      put(cat("predictor_proj.", tail(1)), rest);
    } else if (rest.starts_with("layer.") && parts.size() >= 4) {
      const std::string head = blocks + std::string(parts[1]) + ".";
      if (parts[2] == "attention" && (parts[3] == "query" || parts[3] == "key" || parts[3] == "value") && parts.size() == 5) {
        if (parts[3] != "query") continue;  // handled with its query
        const std::string base = cat("layer.", parts[1], ".attention.");
        const std::string q = base + "query." + std::string(parts[4]), k = base + "key." + std::string(parts[4]),
                          v = base + "value." + std::string(parts[4]);
        if (!rest_to_key.count(k) || !rest_to_key.count(v)) continue;
        const Shape sq = f.info(rest_to_key.at(q)).shape, sk = f.info(rest_to_key.at(k)).shape,
                    sv = f.info(rest_to_key.at(v)).shape;
        if (sq.rank() < 1 || sq != sk || sq != sv || sq[0] > std::numeric_limits<index_t>::max() / 3) continue;  // reported
        Shape cat3 = sq;
        cat3.dims[0] *= 3;
        sec.tensors[head + "attn.qkv." + std::string(parts[4])] =
            CheckpointTensor{cat3, {rest_to_key.at(q), rest_to_key.at(k), rest_to_key.at(v)}, -1};
        used.insert(q), used.insert(k), used.insert(v);
      } else if (parts[2] == "attention" && parts[3] == "proj") {
        put(head + "attn." + tail(3), rest);
      } else if (parts[2] == "norm1" || parts[2] == "norm2" || parts[2] == "mlp") {
        put(head + tail(2), rest);
      }
    }
  }
  for (const auto& [rest, key] : rest_to_key)
    if (!used.count(rest)) sec.untranslated.push_back(key);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------
// Describing what a section holds, and the preset that fits it
// ---------------------------------------------------------------------------------------------------

/// The encoder presets whose (D, depth, MLP hidden) equal the given ones, most specific first for
/// the family: V-JEPA 2 / 2.1 use the "xformers" ViT-g/G (22 / 26 heads), I-JEPA the plain ViT-g.
inline std::vector<presets::EncoderShape> matching_shapes(index_t D, int depth, index_t mlp, bool ijepa) {
  std::vector<presets::EncoderShape> out;
  for (const auto& s : presets::all_shapes)
    if (s.embed_dim == D && s.depth == depth && s.mlp_hidden == mlp) out.push_back(s);
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    const bool ax = a.name.find("xformers") != std::string_view::npos, bx = b.name.find("xformers") != std::string_view::npos;
    return ijepa ? (!ax && bx) : (ax && !bx);
  });
  return out;
}

/// One line: what encoder the section holds and which preset type loads it.
inline std::string describe_encoder(const CheckpointSection& s) {
  using jepa::detail::cat;
  const auto pe = s.shape("patch_embed.proj.weight");
  if (!pe || (pe->rank() != 5 && pe->rank() != 4)) return "it holds no encoder (no patch_embed.proj.weight of rank 4 or 5)";
  const index_t D = (*pe)[0];
  const bool conv2d = pe->rank() == 4;
  const index_t t = conv2d ? 1 : (*pe)[2], p = conv2d ? (*pe)[2] : (*pe)[3];
  const int depth = s.count_indexed("blocks.", ".norm1.weight");
  const auto fc1 = s.shape("blocks.0.mlp.fc1.weight");
  const index_t mlp = fc1 && fc1->rank() == 2 ? (*fc1)[0] : 0;
  const int taps = s.count_indexed("norms_block.", ".weight");
  const bool final_norm = s.has("norm.weight"), image_tok = s.has("patch_embed_img.proj.weight");
  const bool ijepa = conv2d;
  std::string what = cat("it holds a ViT encoder with D = ", D, ", depth ", depth, ", MLP hidden ", mlp, ", ",
                         conv2d ? cat("Conv2d patch ", p, "x", p) : cat("Conv3d tubelet ", t, "x", p, "x", p),
                         final_norm ? ", final norm `norm`" : "", taps ? cat(", ", taps, " norms_block taps") : std::string(),
                         image_tok ? ", an image tokenizer" : "", s.has("pos_embed") ? ", a pos_embed buffer" : "");
  std::string family;
  if (taps == 4 && !final_norm && t == 2 && p == 16) family = "VJepa21Encoder";
  else if (final_norm && !taps && t == 2 && p == 16) family = "VJepa2Encoder";
  else if (final_norm && conv2d && p == 14) family = "IJepaEncoder";
  const auto shapes = matching_shapes(D, depth, mlp, ijepa);
  if (!family.empty() && !shapes.empty()) {
    std::string alts;
    for (std::size_t i = 1; i < shapes.size(); ++i) alts += cat(" (or presets::", shapes[i].name, ")");
    return cat(what, "; the preset that fits it is presets::", family, "<presets::", shapes[0].name, ">", alts,
               family == "VJepa2Encoder" ? " (a V-JEPA 1 file has the same keys: presets::VJepaEncoder)" : "");
  }
  return cat(what, "; no preset has this shape: build VitEncoder<", depth, ", ",
             conv2d ? cat("tokenizers::Patch2d<", p, ">") : cat("tokenizers::Tubelet<", t, ", ", p, ">"), ", ...> with VitConfig{embed_dim = ",
             D, ", mlp_hidden = ", mlp, "} (the head count is not stored in checkpoints)");
}

/// One line: what predictor the section holds and the config that loads it.
inline std::string describe_predictor(const CheckpointSection& s) {
  using jepa::detail::cat;
  if (s.has("action_encoder.weight")) {
    const auto e = s.shape("predictor_embed.weight"), a = s.shape("action_encoder.weight");
    return cat("it holds a V-JEPA 2-AC predictor (predictor_embed ", e ? e->str() : "?", ", action_encoder ",
               a ? a->str() : "?", ", depth ", s.count_indexed("predictor_blocks.", ".norm1.weight"), ")");
  }
  const bool fusion = s.has("predictor_embed.0.weight");
  const auto emb = s.shape(fusion ? "predictor_embed.2.weight" : "predictor_embed.weight");
  const auto in = s.shape(fusion ? "predictor_embed.0.weight" : "predictor_embed.weight");
  const auto proj = s.shape("predictor_proj.weight");
  if (!emb || emb->rank() != 2 || !in || in->rank() != 2) return "it holds no predictor (no predictor_embed weight)";
  const index_t Dp = (*emb)[0], Din = fusion ? (*in)[0] : (*in)[1];
  const index_t levels = fusion && Din > 0 ? (*in)[1] / Din : 1;
  const index_t out = proj && proj->rank() == 2 ? (*proj)[0] : 0;
  const int depth = s.count_indexed("predictor_blocks.", ".norm1.weight");
  const int tokens = s.has("mask_token") ? 1 : s.count_indexed("mask_tokens.", "");
  const auto fc1 = s.shape("predictor_blocks.0.mlp.fc1.weight");
  return cat("it holds a predictor with encoder width D = ", Din, ", ", levels, " level(s), Dp = ", Dp, ", depth ", depth,
             ", MLP hidden ", fc1 && fc1->rank() == 2 ? (*fc1)[0] : 0, ", ", tokens,
             s.has("mask_token") ? " I-JEPA mask_token" : " mask token(s)", ", output width ", out,
             s.has("predictor_proj_context.weight") ? ", a context projection" : "",
             s.has("video_mod_embed") ? ", modality embeddings" : "", "; load it with Predictor<", depth, ", …, ", levels,
             "> and PredictorConfig{encoder_dim = ", Din, ", pred_dim = ", Dp, ", num_mask_tokens = ", tokens,
             ", out_dim = ", levels ? out / levels : out, "} (the head count is not stored in checkpoints)");
}

/// One line for an attentive-probe section.
inline std::string describe_probe(const CheckpointSection& s) {
  using jepa::detail::cat;
  const auto q = s.shape("pooler.query_tokens");
  const auto lin = s.shape("linear.weight");
  if (!q || q->rank() != 3 || !lin || lin->rank() != 2) return "it holds no attentive probe (no pooler.query_tokens / linear.weight)";
  return cat("it holds an attentive probe with D = ", (*q)[2], ", ", (*q)[1], " query token(s), ",
             s.count_indexed("pooler.blocks.", ".norm1.weight") + 1, " pooler block(s) (depth), ", (*lin)[0], " classes");
}

// ---------------------------------------------------------------------------------------------------
// Checkpoint: a safetensors file split into sections, in official names
// ---------------------------------------------------------------------------------------------------

class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& path) : Checkpoint(io::SafetensorsFile(path)) {}
  explicit Checkpoint(io::SafetensorsFile file) : file_(std::move(file)) { index(); }

  const io::SafetensorsFile& file() const { return file_; }
  const std::string& path() const { return file_.path(); }
  const std::vector<CheckpointSection>& sections() const { return sections_; }
  /// File keys that belong to no section (optimizer state, epoch counters, …): never loaded.
  const std::vector<std::string>& other_keys() const { return other_; }

  const CheckpointSection* find_section(std::string_view name) const {
    for (const auto& s : sections_)
      if (s.name == name) return &s;
    return nullptr;
  }
  /// "'encoder' (245 tensors), 'predictor' (150 tensors)".
  std::string section_list() const {
    if (sections_.empty()) return "none";
    std::string out;
    for (const auto& s : sections_) out += (out.empty() ? "" : ", ") + s.label();
    return out;
  }

  /// The section a load with `opt` uses (explicit, else the first preferred one present).
  const CheckpointSection& choose(const WeightsOptions& opt, std::string_view what) const {
    if (opt.section) {
      if (const auto* s = find_section(*opt.section)) return *s;
      fail(jepa::detail::cat("has no section '", *opt.section, "' to load the ", what, " from; its sections: ", section_list()));
    }
    for (const auto& name : opt.prefer)
      if (const auto* s = find_section(name)) return *s;
    std::string pref;
    for (const auto& n : opt.prefer) pref += (pref.empty() ? "'" : ", '") + n + "'";
    fail(jepa::detail::cat("has none of the sections ", pref.empty() ? std::string("(none preferred)") : pref, " the ", what,
                           " is loaded from by default; its sections: ", section_list(),
                           "; choose one (--section NAME in extract_features, WeightsOptions::section in C++)"));
  }

  /// Loads every parameter of `layout` into P (a buffer laid out by it) from the chosen section. All
  /// checks run before anything is written. `what` names the module in messages; `describe` says what
  /// the section holds (appended to shape and missing-key errors, e.g. describe_encoder).
  template <Real T>
  WeightsReport load(const nn::ParamLayout& layout, T* P, const WeightsOptions& opt, std::string_view what = "model",
                     const std::function<std::string(const CheckpointSection&)>& describe = {}) const {
    const CheckpointSection& sec = choose(opt, what);
    WeightsReport rep;
    rep.section = sec.name;
    rep.naming = sec.naming;
    const auto hint = [&] { return describe ? jepa::detail::cat("; ", describe(sec)) : std::string(); };
    std::vector<std::pair<const nn::ParamInfo*, const CheckpointTensor*>> plan;
    std::set<std::string, std::less<>> taken;
    std::vector<std::string> absent;
    for (const nn::ParamInfo& p : layout.params()) {
      const std::string name = official_name(p.name, opt);
      const auto it = sec.tensors.find(name);
      if (it == sec.tensors.end()) {
        if (detail::name_matches(opt.allow_missing, p.name)) rep.missing.push_back(p.name);
        else absent.push_back(name == p.name ? p.name : jepa::detail::cat(name, " (parameter ", p.name, ")"));
        continue;
      }
      const CheckpointTensor& t = it->second;
      if (t.shape != p.shape)
        fail(jepa::detail::cat("section '", sec.name, "': tensor ", file_key_text(t), " has shape ", t.shape, " but the ", what,
                               "'s parameter '", p.name, "' has shape ", p.shape, "; shapes must match exactly", hint()));
      for (const auto& k : t.keys) check_dtype<T>(k, sec);
      taken.insert(name);
      plan.emplace_back(&p, &t);
    }
    if (!absent.empty()) {
      std::string list;
      for (std::size_t i = 0; i < absent.size() && i < 4; ++i) list += (i ? ", '" : "'") + absent[i] + "'";
      fail(jepa::detail::cat("section ", sec.label(), " lacks ", absent.size(), " tensor(s) the ", what, " needs: ", list,
                             absent.size() > 4 ? ", ..." : "", hint(),
                             " (another section: --section NAME in extract_features, WeightsOptions::section in C++; "
                             "WeightsOptions::allow_missing lets parameters be absent)"));
    }
    for (const auto& [name, t] : sec.tensors) {
      if (taken.count(name)) continue;
      if (detail::name_matches(opt.ignore, name)) rep.ignored.push_back(name);
      else rep.unexpected.push_back(name);
    }
    for (const auto& k : sec.untranslated) rep.unexpected.push_back(k);
    if (opt.strict && !rep.unexpected.empty()) {
      std::string list;
      for (std::size_t i = 0; i < rep.unexpected.size() && i < 4; ++i) list += (i ? ", '" : "'") + rep.unexpected[i] + "'";
      fail(jepa::detail::cat("section ", sec.label(), " has ", rep.unexpected.size(), " tensor(s) no parameter of the ", what,
                             " takes: ", list, rep.unexpected.size() > 4 ? ", ..." : "", hint(),
                             " (the file holds another model or size; in C++, WeightsOptions::strict = false loads anyway "
                             "and reports them)"));
    }
    // Released or trained weights holding NaN/Inf would give NaN features with exit code 0: refuse
    // them, naming the tensor, before any parameter is written.
    for (const auto& [p, t] : plan) {
      if (t->index >= 0)
        file_.require_finite(t->keys[0], static_cast<std::size_t>(t->index) * p->numel(), p->numel());
      else
        for (const auto& k : t->keys) file_.require_finite(k);
    }
    for (const auto& [p, t] : plan) copy_into(*t, P + p->offset, p->numel());
    rep.loaded = plan.size();
    return rep;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw IoError(jepa::detail::cat("jepa: checkpoint '", file_.path(), "' ", what));
  }

  static std::string official_name(const std::string& param, const WeightsOptions& opt) {
    for (const auto& [from, to] : opt.rename)
      if (param.starts_with(from)) return to + param.substr(from.size());
    return param;
  }

  /// "'k'", "'q' + 'k' + 'v'" (concatenated) or "'k'[i]" (a slice).
  static std::string file_key_text(const CheckpointTensor& t) {
    std::string s;
    for (std::size_t i = 0; i < t.keys.size(); ++i) s += (i ? " + '" : "'") + t.keys[i] + "'";
    if (t.index >= 0) s += jepa::detail::cat("[", t.index, "]");
    return s;
  }

  template <Real T>
  void check_dtype(const std::string& key, const CheckpointSection& sec) const {
    const auto d = file_.info(key).dtype;
    if (d != io::SafetensorsDType::f32 && d != io::SafetensorsDType::f64 && d != io::SafetensorsDType::bf16 &&
        d != io::SafetensorsDType::f16)
      fail(jepa::detail::cat("section '", sec.name, "': tensor '", key, "' has dtype ", io::safetensors_dtype_name(d),
                             "; parameters load from F32, F64, BF16 or F16"));
  }

  template <Real T>
  void copy_into(const CheckpointTensor& t, T* dst, std::size_t n) const {
    if (t.index >= 0) {
      file_.read_range<T>(t.keys[0], static_cast<std::size_t>(t.index) * n, dst, n);
      return;
    }
    std::size_t at = 0;
    for (const auto& k : t.keys) {  // concatenation along dim 0 = consecutive row-major blocks
      const std::size_t m = file_.info(k).numel();
      file_.read<T>(k, dst + at, m);
      at += m;
    }
  }

  void index() {
    // rest (wrappers removed) per section, then translate HF sections.
    std::map<std::string, std::map<std::string, std::string>> by_section;  // section → rest → file key
    for (const std::string& key : file_.keys()) {
      const auto parts = detail::split_dots(key);
      bool placed = false;
      if (parts.size() > detail::kMaxKeyComponents) {
        other_.push_back(key);
        continue;
      }
      for (std::size_t i = 0; i < parts.size() && !placed; ++i) {
        const std::string rest = detail::join_parts(parts, i, parts.size(), true);
        if (!detail::is_param_root(rest)) continue;
        const std::string section = detail::join_parts(parts, 0, i, false);
        auto& m = by_section[section];
        if (!m.emplace(rest, key).second)
          fail(jepa::detail::cat("has two keys that name '", rest, "' in section '", section, "' once 'module.'/'backbone.' are removed: '",
                                 m.at(rest), "' and '", key, "'"));
        placed = true;
      }
      if (!placed) other_.push_back(key);
    }
    for (auto& [name, rests] : by_section) {
      CheckpointSection sec;
      sec.name = name;
      bool hf = false;
      for (const auto& [rest, key] : rests)
        if (rest.starts_with("layer.") || rest.starts_with("embeddings.") || rest.starts_with("layernorm.")) hf = true;
      if (hf) {
        sec.naming = KeyNaming::hf;
        detail::translate_hf(sec, rests, file_);
      } else {
        for (const auto& [rest, key] : rests) sec.tensors[rest] = CheckpointTensor{file_.info(key).shape, {key}, -1};
      }
      sections_.push_back(std::move(sec));
    }
  }

  io::SafetensorsFile file_;
  std::vector<CheckpointSection> sections_;
  std::vector<std::string> other_;
};

// ---------------------------------------------------------------------------------------------------
// Loading the library's modules with the recipe's defaults (recipe_facts §8.2)
// ---------------------------------------------------------------------------------------------------

/// Frozen buffers that released files may carry next to the parameters (never loaded).
inline const std::vector<std::string>& frozen_buffers() {
  static const std::vector<std::string> v{"pos_embed", "predictor_pos_embed",
                                          "pooler.cross_attention_block.xattn.proj.*"};
  return v;
}

namespace detail {
inline WeightsOptions with_defaults(WeightsOptions opt, std::vector<std::string> prefer) {
  if (opt.prefer.empty()) opt.prefer = std::move(prefer);
  for (const auto& b : frozen_buffers()) opt.ignore.push_back(b);
  return opt;
}
}  // namespace detail

/// Loads an encoder. Default section, as the official code loads them: V-JEPA 2 (final norm, RoPE)
/// "encoder" (the hub; evals use "target_encoder"), then "target_encoder"; V-JEPA 2.1 (taps)
/// "ema_encoder" (distilled B/L), then "target_encoder" (g/G); I-JEPA (Patch2d) "target_encoder"
/// (the EMA weights its evaluations use; a library choice — the recipe does not say), then
/// "encoder"; a bare state dict last.
template <class Encoder, Real T>
WeightsReport load_encoder(const Checkpoint& ck, const Encoder& enc, T* P, WeightsOptions opt = {}) {
  std::vector<std::string> prefer;
  if constexpr (Encoder::num_taps > 0) prefer = {"ema_encoder", "target_encoder", "encoder", ""};
  else if constexpr (Encoder::video_tokenizer_type::tubelet == 1 && !Encoder::uses_rope)
    prefer = {"target_encoder", "encoder", ""};
  else prefer = {"encoder", "target_encoder", ""};
  return ck.load(enc.layout(), P, detail::with_defaults(std::move(opt), std::move(prefer)), "encoder", describe_encoder);
}

/// Loads a predictor (section "predictor", then a bare state dict).
template <class Predictor, Real T>
WeightsReport load_predictor(const Checkpoint& ck, const Predictor& pred, T* P, WeightsOptions opt = {}) {
  return ck.load(pred.layout(), P, detail::with_defaults(std::move(opt), {"predictor", ""}), "predictor", describe_predictor);
}

/// Loads an attentive probe (eval::AttentiveProbe; the official probe file's "classifiers" list is
/// flattened to sections "classifiers.0", "classifiers.1", …; the first by default).
template <class Probe, Real T>
WeightsReport load_probe(const Checkpoint& ck, const Probe& probe, T* P, WeightsOptions opt = {}) {
  return ck.load(probe.layout(), P, detail::with_defaults(std::move(opt), {"classifiers.0", "classifier", ""}),
                 "attentive probe", describe_probe);
}

/// The official V-JEPA 2-AC predictor keys (recipe_facts §8.3; vit_ac_predictor: D 1408 → Dp 1024,
/// 24 blocks, 7-D actions and states, 6-D extrinsics), as {official name, shape}. A module that
/// registers these names loads with load_ac_predictor as it is; one with other names binds through
/// WeightsOptions::rename (library prefix → official prefix).
inline std::vector<std::pair<std::string, Shape>> ac_predictor_keys(index_t encoder_dim = 1408, index_t pred_dim = 1024,
                                                                    int depth = 24, index_t action_dim = 7,
                                                                    index_t state_dim = 7, index_t extrinsics_dim = 6,
                                                                    index_t mlp_hidden = 4096) {
  std::vector<std::pair<std::string, Shape>> k;
  const auto lin = [&](const std::string& n, index_t out, index_t in) {
    k.emplace_back(n + ".weight", Shape{out, in});
    k.emplace_back(n + ".bias", Shape{out});
  };
  lin("predictor_embed", pred_dim, encoder_dim);
  lin("action_encoder", pred_dim, action_dim);
  lin("state_encoder", pred_dim, state_dim);
  lin("extrinsics_encoder", pred_dim, extrinsics_dim);
  for (int i = 0; i < depth; ++i) {
    const std::string b = jepa::detail::cat("predictor_blocks.", i, ".");
    k.emplace_back(b + "norm1.weight", Shape{pred_dim});
    k.emplace_back(b + "norm1.bias", Shape{pred_dim});
    lin(b + "attn.qkv", 3 * pred_dim, pred_dim);
    lin(b + "attn.proj", pred_dim, pred_dim);
    k.emplace_back(b + "norm2.weight", Shape{pred_dim});
    k.emplace_back(b + "norm2.bias", Shape{pred_dim});
    lin(b + "mlp.fc1", mlp_hidden, pred_dim);
    lin(b + "mlp.fc2", pred_dim, mlp_hidden);
  }
  k.emplace_back("predictor_norm.weight", Shape{pred_dim});
  k.emplace_back("predictor_norm.bias", Shape{pred_dim});
  lin("predictor_proj", encoder_dim, pred_dim);
  return k;
}

/// Loads a V-JEPA 2-AC predictor module (models::AcPredictor, or any type with layout() whose names
/// are the official ones, or bound to them with WeightsOptions::rename), from section "predictor" as
/// the AC hub does. When the module does not register the unused `extrinsics_encoder`, the file's
/// copy is ignored (reported) instead of failing the strict check.
template <class AcPredictor, Real T>
WeightsReport load_ac_predictor(const Checkpoint& ck, const AcPredictor& pred, T* P, WeightsOptions opt = {}) {
  if (std::none_of(pred.layout().params().begin(), pred.layout().params().end(),
                   [](const nn::ParamInfo& p) { return p.name.starts_with("extrinsics_encoder."); }))
    opt.ignore.push_back("extrinsics_encoder.*");
  return ck.load(pred.layout(), P, detail::with_defaults(std::move(opt), {"predictor", ""}), "V-JEPA 2-AC predictor",
                 describe_predictor);
}

}  // namespace jepa::models
