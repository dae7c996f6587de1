// jepa/data/folders.hpp — real-data datasets over folders of videos, frame folders and images
// (DESIGN.md decision 10; opt-in, needs FFmpeg and stb: link the jepa::video CMake target).
//
// Every dataset has the same interface:
//   std::size_t size() const;
//   Sample get(std::size_t index, std::uint64_t epoch_seed) const;      // throws on a bad file
//   SampleResult try_get(std::size_t index, std::uint64_t epoch_seed) const;  // never throws for one
//                                                                              // bad file: sample or message
// A Sample is a (3,F,crop,crop) float clip normalised with the ImageNet mean/std (the layout of
// SyntheticVideo), its label and its source path. All randomness (clip start, crop box, flip) comes
// from Rng(epoch_seed, index): a sample is a pure function of (file, index, epoch_seed), so any
// sample can be produced on any thread in any order, and the same seed gives the same bytes.
//
// Listing (done once, in the constructor): files are found recursively under `root`, following
// directory symlinks, skipping names that start with '.', matching extensions case-insensitively,
// and sorted by their path relative to root (byte order). Labels follow torchvision's ImageFolder:
// a sample below root/<class>/… (at any depth) has label = rank of <class> among the sorted names of
// the top-level directories that hold samples (0..C−1); a sample directly in root has label −1.
//
// Errors: root missing or not a directory → IoError; no matching file → ConfigError naming root and
// the accepted extensions; a bad file at get() → IoError naming it (try_get returns the message).
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/data/transforms.hpp"
#include "jepa/io/image.hpp"
#include "jepa/io/video.hpp"

namespace jepa::data {

/// One decoded, transformed sample.
struct Sample {
  std::vector<float> pixels;  // (3,F,H,W), ImageNet-normalised
  index_t frames = 0, height = 0, width = 0;
  int label = -1;             // class index, −1 when the file is not below a class directory
  std::string source;         // the file (or frame directory) it came from
};

/// try_get's answer: either a sample or the error message of the file that failed.
struct SampleResult {
  std::optional<Sample> sample;
  std::string error;
  explicit operator bool() const { return sample.has_value(); }
};

inline const std::vector<std::string>& video_extensions() {
  static const std::vector<std::string> e{".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v"};
  return e;
}
inline const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> e{".jpg", ".jpeg", ".png", ".bmp", ".tga", ".gif", ".ppm", ".pgm", ".pnm"};
  return e;
}

/// Clip options shared by VideoFolder and FrameFolder.
struct ClipOptions {
  int frames = 16;       ///< F, frames per clip
  int target_fps = 4;    ///< fps mode (V-JEPA 2): step = ceil(native fps) div target_fps
  int frame_step = 0;    ///< > 0: fixed frame step (V-JEPA 1 `sampling_rate`), overrides target_fps
  int crop = 256;        ///< output side
  bool train = true;     ///< true: random clip start + RandomResizedCrop + flip; false: first window
                         ///< (end = clip_len, like random_clip_sampling = False) + EvalTransform
  RandomResizedCrop augment = RandomResizedCrop::vjepa(256);  ///< train augmentation; size := crop
  double frame_folder_fps = 0;  ///< FrameFolder in fps mode: the frames' native rate (required there)
  io::VideoReaderOptions reader{};  ///< decoder settings (threads, seek distance)

  void validate() const {
    check_field(frames >= 1, "ClipOptions.frames", frames, "must be >= 1");
    check_field(crop >= 1, "ClipOptions.crop", crop, "must be >= 1");
    check_field(frame_step >= 0, "ClipOptions.frame_step", frame_step, "must be >= 0 (0 = fps mode)");
    check_field(frame_step > 0 || target_fps >= 1, "ClipOptions.target_fps", target_fps, "must be >= 1 in fps mode (frame_step = 0)");
    RandomResizedCrop a = augment;
    a.size = crop;
    a.validate();
  }
};

/// Image options for ImageFolder.
struct ImageOptions {
  int crop = 224;
  bool train = true;
  int repeat_frames = 1;  ///< F: > 1 repeats the image in time (V-JEPA 2 images as videos); 1 = image clip (2.1)
  RandomResizedCrop augment = RandomResizedCrop::vjepa(224);  ///< size := crop
  void validate() const {
    check_field(crop >= 1, "ImageOptions.crop", crop, "must be >= 1");
    check_field(repeat_frames >= 1, "ImageOptions.repeat_frames", repeat_frames, "must be >= 1");
    RandomResizedCrop a = augment;
    a.size = crop;
    a.validate();
  }
};

/// The listing, labels and the get/try_get contract common to the folder datasets.
class FolderDataset {
 public:
  virtual ~FolderDataset() = default;

  std::size_t size() const { return items_.size(); }
  const std::filesystem::path& root() const { return root_; }
  /// Sorted class names (top-level directories holding samples); empty when there are none.
  const std::vector<std::string>& classes() const { return classes_; }
  std::size_t num_classes() const { return classes_.size(); }
  const std::string& path(std::size_t index) const { return items_.at(check_index(index)).path; }
  int label(std::size_t index) const { return items_.at(check_index(index)).label; }

  /// Sample `index` for epoch seed `epoch_seed`. Throws IndexError for index >= size() and
  /// IoError naming the file when it cannot be read or decoded.
  virtual Sample get(std::size_t index, std::uint64_t epoch_seed) const = 0;

  /// As get(), but a bad file gives {nullopt, message} instead of an exception, so a training loop
  /// can report it and continue. Still throws IndexError for index >= size().
  SampleResult try_get(std::size_t index, std::uint64_t epoch_seed) const {
    check_index(index);
    try {
      return {get(index, epoch_seed), {}};
    } catch (const IndexError&) {
      throw;
    } catch (const std::exception& e) {
      return {std::nullopt, e.what()};
    }
  }

 protected:
  struct Item {
    std::string path;
    int label = -1;
  };

  std::size_t check_index(std::size_t index) const {
    if (index >= items_.size())
      fail_field<IndexError>("dataset index", index, detail::cat("must be < size() = ", items_.size(), " (root '", root_.string(), "')"));
    return index;
  }

  static std::string lower_ext(const std::filesystem::path& p) {
    std::string e = p.extension().string();
    for (auto& ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return e;
  }
  static bool has_ext(const std::filesystem::path& p, const std::vector<std::string>& exts) {
    const std::string e = lower_ext(p);
    return std::find(exts.begin(), exts.end(), e) != exts.end();
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
  }

  static void check_root(const std::filesystem::path& root) {
    std::error_code ec;
    const auto st = std::filesystem::status(root, ec);
    if (ec || !std::filesystem::exists(st)) throw IoError("jepa: dataset folder '" + root.string() + "' does not exist");
    if (!std::filesystem::is_directory(st)) throw IoError("jepa: dataset path '" + root.string() + "' is not a directory");
  }

  /// Every regular file below root (recursive, following directory symlinks, no dot-names),
  /// as paths relative to root, sorted.
  static std::vector<std::filesystem::path> list_files(const std::filesystem::path& root) {
    namespace fs = std::filesystem;
    check_root(root);
    std::vector<fs::path> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied, ec);
    if (ec) throw IoError("jepa: cannot list dataset folder '" + root.string() + "': " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) throw IoError("jepa: error while listing dataset folder '" + root.string() + "': " + ec.message());
      const auto name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec)) out.push_back(it->path().lexically_relative(root));
    }
    if (ec) throw IoError("jepa: error while listing dataset folder '" + root.string() + "': " + ec.message());
    std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) { return a.generic_string() < b.generic_string(); });
    return out;
  }

  /// Fills items_ and classes_ from sample paths relative to root (a sample below a top-level
  /// directory gets that directory's class).
  void set_items(const std::vector<std::filesystem::path>& rel) {
    std::set<std::string> names;
    for (const auto& r : rel)
      if (std::distance(r.begin(), r.end()) >= 2) names.insert(r.begin()->string());
    classes_.assign(names.begin(), names.end());
    std::map<std::string, int> id;
    for (std::size_t i = 0; i < classes_.size(); ++i) id[classes_[i]] = static_cast<int>(i);
    items_.clear();
    for (const auto& r : rel)
      items_.push_back({(root_ / r).string(), std::distance(r.begin(), r.end()) >= 2 ? id[r.begin()->string()] : -1});
  }

  [[noreturn]] void fail_empty(const std::string& what, const std::vector<std::string>& exts) const {
    throw ConfigError("jepa: dataset folder '" + root_.string() + "' contains no " + what + " (accepted extensions: " + join(exts) +
                      ", case-insensitive)");
  }

  static Sample make_sample(std::vector<float> px, index_t F, int side, int label, std::string source) {
    Sample s;
    s.pixels = std::move(px);
    s.frames = F;
    s.height = s.width = side;
    s.label = label;
    s.source = std::move(source);
    return s;
  }

  /// Clip sampling (fps or fixed-step mode) + the train or eval transform, shared by the video and
  /// frame datasets. `visit(indices, sink)` decodes the frames and hands each distinct one to
  /// sink(RgbFrame&, positions) as it arrives; it is transformed into its output frames at once, so
  /// only one full-resolution frame exists at a time. The random crop box and flip are drawn at the
  /// first frame (after the indices, as the whole-clip transform draws them) and shared by all.
  template <class Visit>
  static Sample clip_sample(const ClipOptions& o, std::int64_t video_len, double native_fps, Rng& rng, Visit&& visit, int label,
                            const std::string& source) {
    const int step = o.frame_step > 0 ? o.frame_step : frame_step_for_fps(native_fps, o.target_fps);
    const auto idx = sample_clip_indices(video_len, o.frames, step, rng, o.train);
    RandomResizedCrop a = o.augment;
    a.size = o.crop;
    CropBox box{};
    bool flip = false, first = true;
    const std::size_t F = static_cast<std::size_t>(o.frames), plane = static_cast<std::size_t>(o.crop) * static_cast<std::size_t>(o.crop);
    std::vector<float> px(3 * F * plane);
    std::vector<RgbFrame> one(1);
    visit(idx, [&](RgbFrame& fr, const std::vector<std::size_t>& at) {
      if (o.train && first) {
        box = a.sample_box(fr.height, fr.width, rng);
        flip = rng.uniform() < a.flip_p;
      }
      first = false;
      one[0] = std::move(fr);  // moved, not copied: a frame may be large
      const std::vector<float> t = o.train ? a.apply(one, box, flip) : EvalTransform{o.crop}(one);
      fr = std::move(one[0]);
      for (const std::size_t f : at)
        for (std::size_t c = 0; c < 3; ++c) std::copy_n(t.data() + c * plane, plane, px.data() + (c * F + f) * plane);
    });
    return make_sample(std::move(px), o.frames, o.crop, label, source);
  }

  std::filesystem::path root_;
  std::vector<Item> items_;
  std::vector<std::string> classes_;
};

/// Video files (.mp4 .avi .mkv .webm .mov .m4v) decoded with FFmpeg. get(): open the file, take the
/// frame count (the container's, or round(duration·fps), or counted by demuxing when neither is
/// known) and the native fps, sample indices (sample_clip_indices), decode them (frames past the
/// real end repeat the last frame), then RandomResizedCrop (train) or EvalTransform.
class VideoFolder : public FolderDataset {
 public:
  VideoFolder(const std::filesystem::path& root, int frames, int target_fps, int crop, bool train)
      : VideoFolder(root, [&] {
          ClipOptions o;
          o.frames = frames;
          o.target_fps = target_fps;
          o.crop = crop;
          o.train = train;
          return o;
        }()) {}
  VideoFolder(const std::filesystem::path& root, const ClipOptions& opt) : opt_(opt) {
    opt_.validate();
    root_ = root;
    std::vector<std::filesystem::path> rel;
    for (auto& r : list_files(root))
      if (has_ext(r, video_extensions())) rel.push_back(std::move(r));
    if (rel.empty()) fail_empty("video files", video_extensions());
    set_items(rel);
  }
  const ClipOptions& options() const { return opt_; }

  Sample get(std::size_t index, std::uint64_t epoch_seed) const override {
    const Item& it = items_[check_index(index)];
    io::VideoReader vr(it.path, opt_.reader);
    std::int64_t len = vr.frame_count();
    if (len <= 0) len = vr.count_frames();
    if (len <= 0) throw IoError("jepa: video file '" + it.path + "' has no video frames");
    if (opt_.frame_step <= 0 && !(vr.fps() > 0))
      throw IoError("jepa: video file '" + it.path + "' declares no frame rate, needed in fps mode (set ClipOptions.frame_step)");
    Rng rng(epoch_seed, index);
    auto visit = [&](const std::vector<std::int64_t>& idx, auto&& sink) { vr.visit_frames(idx, sink); };
    return clip_sample(opt_, len, vr.fps(), rng, visit, it.label, it.path);
  }

 private:
  ClipOptions opt_;
};

/// Videos stored as folders of frames: every directory below root (root included) that directly
/// holds image files is one video, its frames being those files sorted by file name (byte order:
/// use zero-padded numbers). A video directory at `root/<class>/<video>/` (depth >= 2) is labelled by
/// `<class>`; one at `root/<video>/` has label −1. Frame rate: frame_step > 0 (default 1 from the short
/// constructor), or fps mode with ClipOptions.frame_folder_fps as the native rate. Frames must all
/// have one size (else IoError naming the frame).
class FrameFolder : public FolderDataset {
 public:
  FrameFolder(const std::filesystem::path& root, int frames, int crop, bool train, int frame_step = 1)
      : FrameFolder(root, [&] {
          ClipOptions o;
          o.frames = frames;
          o.crop = crop;
          o.train = train;
          o.frame_step = frame_step;
          return o;
        }()) {}
  FrameFolder(const std::filesystem::path& root, const ClipOptions& opt) : opt_(opt) {
    opt_.validate();
    check_field(opt_.frame_step > 0 || opt_.frame_folder_fps > 0, "ClipOptions.frame_folder_fps", opt_.frame_folder_fps,
                "FrameFolder needs frame_step > 0 or a positive frame_folder_fps");
    root_ = root;
    std::map<std::string, std::vector<std::string>> dirs;  // relative dir → sorted frame file names
    for (const auto& r : list_files(root))
      if (has_ext(r, image_extensions())) dirs[r.parent_path().generic_string()].push_back(r.filename().string());
    if (dirs.empty()) fail_empty("frame folders (directories of image files)", image_extensions());
    std::vector<std::filesystem::path> rel;
    for (auto& [d, files] : dirs) {
      std::sort(files.begin(), files.end());
      rel.emplace_back(d.empty() ? std::filesystem::path(".") : std::filesystem::path(d));
      frames_.push_back(std::move(files));
    }
    set_items(rel);
    for (auto& it : items_) {  // "root/./" → "root", "root/a/" → "root/a"
      std::string p = std::filesystem::path(it.path).lexically_normal().string();
      while (p.size() > 1 && p.back() == '/') p.pop_back();
      it.path = p;
    }
  }
  const ClipOptions& options() const { return opt_; }
  /// Number of frames of video `index`.
  std::size_t video_length(std::size_t index) const { return frames_[check_index(index)].size(); }

  Sample get(std::size_t index, std::uint64_t epoch_seed) const override {
    const Item& it = items_[check_index(index)];
    const auto& files = frames_[index];
    Rng rng(epoch_seed, index);
    // Sampled indices are non-decreasing: each file is read once, for the run of positions that
    // repeat it (the padding of a short video).
    auto visit = [&](const std::vector<std::int64_t>& idx, auto&& sink) {
      int w0 = 0, h0 = 0;
      for (std::size_t k = 0; k < idx.size();) {
        std::vector<std::size_t> at{k};
        while (k + at.size() < idx.size() && idx[k + at.size()] == idx[k]) at.push_back(k + at.size());
        const std::string file = (std::filesystem::path(it.path) / files[static_cast<std::size_t>(idx[k])]).string();
        RgbFrame fr = io::read_image(file);
        if (k == 0) w0 = fr.width, h0 = fr.height;
        else if (fr.width != w0 || fr.height != h0)
          throw IoError(detail::cat("jepa: frame file '", file, "' is ", fr.width, "x", fr.height, " but the video's first sampled frame is ",
                                    w0, "x", h0));
        sink(fr, at);
        k += at.size();
      }
    };
    return clip_sample(opt_, static_cast<std::int64_t>(files.size()), opt_.frame_folder_fps, rng, visit, it.label, it.path);
  }

 private:
  ClipOptions opt_;
  std::vector<std::vector<std::string>> frames_;
};

/// Still images (.jpg .jpeg .png .bmp .tga .gif .ppm .pgm .pnm) decoded with stb_image. get():
/// RandomResizedCrop (train) or EvalTransform on the image, as a clip of repeat_frames identical
/// frames (F = repeat_frames; 1 = a 1-frame image clip for the 2.1 image tokenizer).
class ImageFolder : public FolderDataset {
 public:
  ImageFolder(const std::filesystem::path& root, int crop, bool train, int repeat_frames = 1)
      : ImageFolder(root, [&] {
          ImageOptions o;
          o.crop = crop;
          o.train = train;
          o.repeat_frames = repeat_frames;
          return o;
        }()) {}
  ImageFolder(const std::filesystem::path& root, const ImageOptions& opt) : opt_(opt) {
    opt_.validate();
    root_ = root;
    std::vector<std::filesystem::path> rel;
    for (auto& r : list_files(root))
      if (has_ext(r, image_extensions())) rel.push_back(std::move(r));
    if (rel.empty()) fail_empty("image files", image_extensions());
    set_items(rel);
  }
  const ImageOptions& options() const { return opt_; }

  Sample get(std::size_t index, std::uint64_t epoch_seed) const override {
    const Item& it = items_[check_index(index)];
    const std::vector<RgbFrame> one{io::read_image(it.path)};
    std::vector<float> px1;
    if (opt_.train) {
      Rng rng(epoch_seed, index);
      RandomResizedCrop a = opt_.augment;
      a.size = opt_.crop;
      px1 = a(one, rng);
    } else {
      px1 = EvalTransform{opt_.crop}(one);
    }
    const std::size_t F = static_cast<std::size_t>(opt_.repeat_frames), plane = static_cast<std::size_t>(opt_.crop) * static_cast<std::size_t>(opt_.crop);
    std::vector<float> px(3 * F * plane);
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t f = 0; f < F; ++f)
        std::copy_n(px1.begin() + static_cast<std::ptrdiff_t>(c * plane), plane, px.begin() + static_cast<std::ptrdiff_t>((c * F + f) * plane));
    return make_sample(std::move(px), opt_.repeat_frames, opt_.crop, it.label, it.path);
  }

 private:
  ImageOptions opt_;
};

}  // namespace jepa::data
