// jepa/tokenizers/multimodal.hpp — one encoder, two tokenizers (V-JEPA 2.1, recipe_facts §1.4).
//
// MultiModal<Video, Image> gives videos and images their own patch embedding inside one shared
// encoder: an input whose frame count equals Image::tubelet (1 for 2.1's Tubelet<1,16>) goes through
// `patch_embed_img`, anything else through `patch_embed`. With ModalityEmbedding (the released 2.1
// checkpoints), a learned `img_mod_embed` or `video_mod_embed` [1,1,D] (init normal(0, 1e-6)) is
// added to every token right after tokenisation, before masking.
#pragma once

#include <type_traits>

#include "jepa/concepts/tokenizer.hpp"

namespace jepa::tokenizers {

template <class Video, class Image, bool ModalityEmbedding = true>
struct MultiModal {
  static_assert(jepa::detail::check_tokenizer<Video>() && jepa::detail::check_tokenizer<Image>());
  static_assert(Video::patch == Image::patch, "jepa: MultiModal video and image tokenizers must share the patch size");
  static_assert(Image::tubelet != Video::tubelet,
                "jepa: MultiModal needs distinct tubelet sizes: the input's frame count selects the tokenizer");
  using video = Video;
  using image = Image;
  static constexpr bool modality_embedding = ModalityEmbedding;
  static constexpr int patch = Video::patch;
  /// An input with this many frames is an image.
  static constexpr int image_frames = Image::tubelet;
};

template <class T> struct is_multimodal : std::false_type {};
template <class V, class I, bool M> struct is_multimodal<MultiModal<V, I, M>> : std::true_type {};
template <class T> inline constexpr bool is_multimodal_v = is_multimodal<T>::value;

}  // namespace jepa::tokenizers
