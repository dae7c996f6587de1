// Real-data input: FFmpeg VideoReader, stb image reading, V-JEPA frame sampling, RandomResizedCrop,
// the eval transform, folder datasets, and bad data (missing, corrupt, truncated, audio-only files,
// empty folders).
//
// Test media are generated at run time with the ffmpeg command-line tool in a temporary directory
// (testsrc patterns, a few KB each). The FFmpeg-dependent cases skip with a message when the
// `ffmpeg` binary is missing; the pure transform cases always run. Decoded pixels are compared
// with ffmpeg's own `-pix_fmt rgb24` output for the same frames.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

#include "jepa/data/folders.hpp"
#include "jepa/data/transforms.hpp"
#include "jepa/io/image.hpp"
#include "jepa/io/png.hpp"
#include "jepa/io/video.hpp"
#include "support/skip.hpp"

using namespace jepa;
namespace fs = std::filesystem;
using data::RgbFrame;

namespace {

bool message_has(const std::exception& e, const std::string& s) { return std::string(e.what()).find(s) != std::string::npos; }

/// Runs a shell command quietly; true on exit status 0.
bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }
std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

std::vector<std::uint8_t> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::vector<std::uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

/// The generated media, made once per process; the directory is removed at exit.
struct Media {
  bool ok = false;           // ffmpeg binary present and every video generated (images are always made)
  std::string why;           // reason when !ok
  fs::path dir;
  fs::path mp4, gop, avi, mkv, short5, faststart, audio, junk, truncated, damaged, damaged_h264, cut_h264, textfile;
  fs::path videos, frames, images, empty;

  Media() {
    av_log_set_level(AV_LOG_QUIET);  // the library's errors carry FFmpeg's message; keep the log clean
    dir = fs::temp_directory_path() / ("jepa_test_video_io_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    // Images and frame folders need only stb (always made).
    // Frame folders: frames/walk/<video>/000.png …
    frames = dir / "frames";
    for (int v = 0; v < 2; ++v) {
      const fs::path d = frames / (v ? "run" : "walk") / ("v" + std::to_string(v));
      fs::create_directories(d);
      for (int f = 0; f < 12; ++f) {
        io::RgbImage img(40, 30);
        for (int y = 0; y < 30; ++y)
          for (int x = 0; x < 40; ++x) {
            img.at(x, y)[0] = static_cast<std::uint8_t>(x * 6);
            img.at(x, y)[1] = static_cast<std::uint8_t>(y * 8);
            img.at(x, y)[2] = static_cast<std::uint8_t>(f * 20 + v);
          }
        char name[16];
        std::snprintf(name, sizeof name, "%03d.png", f);
        io::write_png((d / name).string(), img);
      }
    }
    // Images: images/{a,b}/*.png, one image smaller than any crop below.
    images = dir / "images";
    fs::create_directories(images / "a");
    fs::create_directories(images / "b");
    for (int i = 0; i < 3; ++i) {
      io::RgbImage img(i == 2 ? 20 : 64, i == 2 ? 12 : 48);
      for (auto& px : img.data) px = static_cast<std::uint8_t>(37 * i + 11);
      io::write_png((images / (i ? "b" : "a") / ("img" + std::to_string(i) + ".png")).string(), img);
    }
    empty = dir / "empty";
    fs::create_directories(empty / "nothing_here");
    std::ofstream(empty / "nothing_here" / "file.txt") << "x";
    // Videos need the ffmpeg command-line tool.
    if (!sh("ffmpeg -version")) {
      why = "the ffmpeg binary is not on PATH (apt-get install ffmpeg); FFmpeg decoding tests skipped";
      std::cerr << "test_video_io: " << why << "\n";
      return;
    }
    const std::string ff = "ffmpeg -nostdin -v error -y ";
    mp4 = dir / "x.mp4";          // 96x64, 30 fps, 2 s = 60 frames, H.264 (B-frames), yuv420p
    gop = dir / "g.mp4";          // 96x64, 30 fps, 4 s = 120 frames, keyframe every 10 frames
    avi = dir / "m.avi";          // 80x48, 25 fps, 1 s = 25 frames, MJPEG (full-range yuvj420p)
    mkv = dir / "k.mkv";          // 64x48, 30 fps, 1 s, H.264 in Matroska (no declared frame count)
    short5 = dir / "s.mp4";       // 5 frames
    audio = dir / "a.m4a";        // audio only
    junk = dir / "junk.mp4";      // random bytes
    truncated = dir / "t.mp4";    // first half of x.mp4 (the moov atom is at the end: unreadable)
    damaged = dir / "d.avi";      // m.avi with its middle overwritten by garbage
    faststart = dir / "f.mp4";    // x.mp4 with the moov atom first (readable when cut)
    damaged_h264 = dir / "dh.mp4";  // f.mp4 with 10% of its middle overwritten: H.264 decode error
    cut_h264 = dir / "ch.mp4";    // f.mp4 cut at 60%
    textfile = dir / "notes.mp4"; // a text file named .mp4
    const bool made =
        sh(ff + "-f lavfi -i testsrc=size=96x64:rate=30 -t 2 -c:v libx264 -pix_fmt yuv420p " + q(mp4)) &&
        sh(ff + "-f lavfi -i testsrc=size=96x64:rate=30 -t 4 -c:v libx264 -g 10 -pix_fmt yuv420p " + q(gop)) &&
        sh(ff + "-f lavfi -i testsrc=size=80x48:rate=25 -t 1 -c:v mjpeg -pix_fmt yuvj420p " + q(avi)) &&
        sh(ff + "-f lavfi -i testsrc=size=64x48:rate=30 -t 1 -c:v libx264 -pix_fmt yuv420p " + q(mkv)) &&
        sh(ff + "-f lavfi -i testsrc=size=96x64:rate=30 -t 2 -c:v libx264 -pix_fmt yuv420p -movflags +faststart " + q(faststart)) &&
        sh(ff + "-f lavfi -i testsrc=size=64x48:rate=30 -frames:v 5 -c:v libx264 -pix_fmt yuv420p " + q(short5)) &&
        sh(ff + "-f lavfi -i sine=frequency=440:duration=0.5 -c:a aac " + q(audio));
    if (!made) {
      why = "ffmpeg is present but could not generate the test media (libx264/mjpeg/aac encoders needed)";
      std::cerr << "test_video_io: " << why << "\n";
      return;
    }
    std::vector<std::uint8_t> b(4096);
    std::uint32_t s = 12345;
    for (auto& x : b) x = static_cast<std::uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
    write_bytes(junk, b);
    auto m = read_bytes(mp4);
    m.resize(m.size() / 2);
    write_bytes(truncated, m);
    auto a = read_bytes(avi);
    for (std::size_t i = a.size() / 3; i < a.size() / 3 + a.size() / 4; ++i) a[i] = static_cast<std::uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
    write_bytes(damaged, a);
    auto fsb = read_bytes(faststart);
    auto dh = fsb;
    for (std::size_t i = dh.size() / 2; i < dh.size() / 2 + dh.size() / 10; ++i) dh[i] = static_cast<std::uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
    write_bytes(damaged_h264, dh);
    fsb.resize(fsb.size() * 6 / 10);
    write_bytes(cut_h264, fsb);
    std::ofstream(textfile) << "this is not a video\n";

    // A labelled video folder: videos/{cats,dogs}/…, plus one unlabelled file at the top level and
    // files that must be ignored (wrong extension, hidden).
    videos = dir / "videos";
    fs::create_directories(videos / "dogs");
    fs::create_directories(videos / "cats" / "sub");
    fs::copy_file(mp4, videos / "dogs" / "d1.mp4");
    fs::copy_file(avi, videos / "cats" / "c1.AVI");
    fs::copy_file(short5, videos / "cats" / "sub" / "c2.mp4");
    fs::copy_file(mkv, videos / "top.mkv");
    std::ofstream(videos / "readme.txt") << "ignored";
    fs::copy_file(mp4, videos / "dogs" / ".hidden.mp4");

    ok = true;
  }
  ~Media() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Media& media() {
  static Media m;
  return m;
}

#define REQUIRE_MEDIA()                                      \
  do {                                                       \
    if (!media().ok) {                                       \
      jepa::test::skip_case(media().why);                    \
      return;                                                \
    }                                                        \
  } while (0)

/// ffmpeg's own RGB24 bytes for the frames `n` (decode order = presentation order index).
std::vector<std::uint8_t> ffmpeg_rgb(const fs::path& video, const std::vector<int>& n) {
  std::ostringstream sel;
  for (std::size_t k = 0; k < n.size(); ++k) sel << (k ? "+" : "") << "eq(n\\," << n[k] << ")";
  const fs::path out = media().dir / "ref.rgb";
  fs::remove(out);
  std::ostringstream cmd;
  cmd << "ffmpeg -nostdin -v error -y -i " << q(video) << " -vf \"select='" << sel.str()
      << "'\" -fps_mode passthrough -f rawvideo -pix_fmt rgb24 " << q(out);
  const bool ok = sh(cmd.str());
  BOOST_REQUIRE_MESSAGE(ok, "ffmpeg could not produce reference frames for " << video);
  return read_bytes(out);
}

int max_abs_diff(const std::vector<RgbFrame>& frames, const std::vector<std::uint8_t>& ref) {
  std::size_t k = 0;
  int m = 0;
  for (const auto& f : frames)
    for (const auto v : f.rgb) m = std::max(m, std::abs(static_cast<int>(v) - static_cast<int>(ref.at(k++))));
  BOOST_TEST(k == ref.size());
  return m;
}

RgbFrame pattern_frame(int w, int h, int seed = 0) {
  RgbFrame f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) f.at(x, y)[c] = static_cast<std::uint8_t>((x * 7 + y * 13 + c * 50 + seed * 3) % 256);
  return f;
}

/// Sets an environment variable for one scope (JEPA_MEMORY_LIMIT plays a small machine).
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* v) : name(n) { ::setenv(n, v, 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

/// Everything written to file descriptor 2 (stderr) while it lives, FFmpeg's own log included.
struct StderrCapture {
  fs::path file;
  int saved = -1;
  explicit StderrCapture(const fs::path& f) : file(f) {
    std::fflush(stderr);
    saved = ::dup(2);
    const int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::close(fd);
  }
  std::string stop() {
    if (saved >= 0) {
      std::fflush(stderr);
      ::dup2(saved, 2);
      ::close(saved);
      saved = -1;
    }
    const auto b = read_bytes(file);
    return {b.begin(), b.end()};
  }
  ~StderrCapture() { stop(); }
};

/// A PNG that is only a header: signature, IHDR (w × h, 8-bit RGB) and IEND. stb_image does not
/// check chunk CRCs, so they are left zero; enough for stbi_info and for the size checks.
void write_png_header(const fs::path& p, std::uint32_t w, std::uint32_t h) {
  std::vector<std::uint8_t> b{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (const std::uint32_t v : {w, h})
    for (int k = 3; k >= 0; --k) b.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
  for (const int v : {8, 2, 0, 0, 0, 0, 0, 0, 0}) b.push_back(static_cast<std::uint8_t>(v));  // depth, RGB, methods, CRC
  for (const int v : {0, 0, 0, 0, int{'I'}, int{'E'}, int{'N'}, int{'D'}, 0, 0, 0, 0}) b.push_back(static_cast<std::uint8_t>(v));
  write_bytes(p, b);
}

/// Undoes the ImageNet normalisation: back to 0..255.
float unnorm255(float v, int c) { return (v * data::kImagenetStd[static_cast<std::size_t>(c)] + data::kImagenetMean[static_cast<std::size_t>(c)]) * 255.0f; }

}  // namespace

// ------------------------------------------------------------------------------------------------
// Frame sampling (V-JEPA 2 src/datasets/video_dataset.py; golden values from numpy)
// ------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(frame_sampling)

BOOST_AUTO_TEST_CASE(step_from_fps) {
  BOOST_TEST(data::frame_step_for_fps(30.0, 4) == 7);      // ceil(30) div 4
  BOOST_TEST(data::frame_step_for_fps(25.0, 4) == 6);
  BOOST_TEST(data::frame_step_for_fps(30000.0 / 1001.0, 4) == 7);  // 29.97 → ceil 30
  BOOST_TEST(data::frame_step_for_fps(24.0, 4) == 6);
  BOOST_TEST(data::frame_step_for_fps(60.0, 4) == 15);
  BOOST_TEST(data::frame_step_for_fps(2.0, 4) == 1);       // slower than the target: every frame
  BOOST_CHECK_THROW(data::frame_step_for_fps(0.0, 4), ConfigError);
  BOOST_CHECK_THROW(data::frame_step_for_fps(30.0, 0), ConfigError);
}

BOOST_AUTO_TEST_CASE(numpy_linspace) {
  BOOST_TEST(data::linspace(0, 1, 3) == (std::vector<double>{0.0, 0.5, 1.0}), boost::test_tools::per_element());
  BOOST_TEST(data::linspace(3, 3, 4) == (std::vector<double>{3, 3, 3, 3}), boost::test_tools::per_element());
  BOOST_TEST(data::linspace(0, 10, 1) == (std::vector<double>{0.0}), boost::test_tools::per_element());
  BOOST_TEST(data::linspace(0, 10, 0).empty());
  // Bit-exact with numpy.linspace(0.1, 0.7, 7).tolist() (0.30000000000000004 would appear with a
  // naive start + i·(stop−start)/(n−1) in a different association).
  const auto v = data::linspace(0.1, 0.7, 7);
  const std::vector<double> np{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7};
  for (std::size_t i = 0; i < np.size(); ++i) BOOST_TEST(v[i] == np[i]);
}

BOOST_AUTO_TEST_CASE(golden_indices_fixed_window) {
  Rng rng(0, 0);
  // 300 frames at 30 fps, 16 frames at 4 fps: step 7, clip_len 112, first window (end = 112).
  // np.clip(np.linspace(0, 112, 16), 0, 111).astype(np.int64): both endpoints included, so the
  // effective stride is 112/15 ≈ 7.47 > 7.
  const std::vector<std::int64_t> a{0, 7, 14, 22, 29, 37, 44, 52, 59, 67, 74, 82, 89, 97, 104, 111};
  BOOST_TEST(data::sample_frame_indices(300, 30.0, 16, 4, rng, false) == a, boost::test_tools::per_element());
  BOOST_TEST(rng.position() == 0u);  // no draw when the start is not random
  // A video exactly clip_len long takes the short-video branch but needs no padding.
  BOOST_TEST(data::sample_frame_indices(112, 30.0, 16, 4, rng) == a, boost::test_tools::per_element());
  // Fixed step (V-JEPA 1 sampling_rate 4).
  const std::vector<std::int64_t> b{0, 4, 8, 12, 17, 21, 25, 29, 34, 38, 42, 46, 51, 55, 59, 63};
  BOOST_TEST(data::sample_frame_indices_fixed_step(100, 16, 4, rng, false) == b, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(golden_indices_random_end) {
  // numpy with end_indx = 250: start 138, linspace(138, 250, 16) clipped to 249.
  const std::vector<std::int64_t> golden{138, 145, 152, 160, 167, 175, 182, 190, 197, 205, 212, 220, 227, 235, 242, 249};
  bool found = false;
  std::set<std::int64_t> ends;
  for (std::uint64_t seed = 0; seed < 20000; ++seed) {
    Rng rng(seed, 3);
    const auto idx = data::sample_frame_indices(300, 30.0, 16, 4, rng);
    const std::int64_t end = idx.front() + 112;
    BOOST_REQUIRE(idx.back() == end - 1);          // linspace endpoint, clipped to end − 1
    ends.insert(end);
    if (idx.front() == 138) {
      BOOST_TEST(idx == golden, boost::test_tools::per_element());
      found = true;
    }
  }
  BOOST_TEST(found);
  // end ~ U{clip_len … video_len − 1}: every value is hit, nothing outside.
  BOOST_TEST(*ends.begin() == 112);
  BOOST_TEST(*ends.rbegin() == 299);
  BOOST_TEST(ends.size() == 188u);
  // Deterministic in (seed, stream).
  Rng r1(7, 9), r2(7, 9);
  BOOST_TEST(data::sample_frame_indices(300, 25.0, 8, 4, r1) == data::sample_frame_indices(300, 25.0, 8, 4, r2),
             boost::test_tools::per_element());
  // 25 fps: step 6; np end 55 on a 60-frame video gives these.
  const std::vector<std::int64_t> g25{7, 13, 20, 27, 34, 41, 48, 54};
  bool found25 = false;
  for (std::uint64_t seed = 0; seed < 2000 && !found25; ++seed) {
    Rng rng(seed, 0);
    const auto idx = data::sample_frame_indices(60, 25.0, 8, 4, rng);
    if (idx.front() == 7) {
      BOOST_TEST(idx == g25, boost::test_tools::per_element());
      found25 = true;
    }
  }
  BOOST_TEST(found25);
}

BOOST_AUTO_TEST_CASE(short_video_padding) {
  Rng rng(1, 1);
  // 50 frames < clip_len 112: linspace(0, 50, 50 div 7 = 7) then 9 copies of 50, clipped to 49.
  const std::vector<std::int64_t> a{0, 8, 16, 25, 33, 41, 49, 49, 49, 49, 49, 49, 49, 49, 49, 49};
  BOOST_TEST(data::sample_frame_indices(50, 30.0, 16, 4, rng) == a, boost::test_tools::per_element());
  // 5 frames, step 7: 5 div 7 = 0 sampled points, so every index is the last frame (reference quirk).
  BOOST_TEST(data::sample_frame_indices(5, 30.0, 16, 4, rng) == std::vector<std::int64_t>(16, 4), boost::test_tools::per_element());
  // 3 frames, step 1, 4 wanted: linspace(0, 3, 3) = [0, 1.5, 3] + [3] → clip 2.
  BOOST_TEST(data::sample_frame_indices_fixed_step(3, 4, 1, rng) == (std::vector<std::int64_t>{0, 1, 2, 2}), boost::test_tools::per_element());
  BOOST_CHECK_THROW(data::sample_frame_indices_fixed_step(0, 4, 1, rng), ConfigError);
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------------------------------
// RandomResizedCrop (V-JEPA 2 training augmentation)
// ------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(random_resized_crop)

BOOST_AUTO_TEST_CASE(box_within_image_scale_and_aspect) {
  const auto rrc = data::RandomResizedCrop::vjepa(64);
  int flips = 0;
  for (std::uint64_t s = 0; s < 2000; ++s) {
    Rng rng(s, 0);
    const auto b = rrc.sample_box(240, 320, rng);
    BOOST_REQUIRE(b.top >= 0 && b.left >= 0 && b.top + b.height <= 240 && b.left + b.width <= 320);
    const double area = static_cast<double>(b.width) * b.height / (320.0 * 240.0);
    const double ar = static_cast<double>(b.width) / b.height;
    // w and h are rounded to whole pixels: allow that rounding (≤ 0.5 px on a ≥ 150 px side).
    BOOST_REQUIRE(area >= 0.3 * 0.99 && area <= 1.0);
    BOOST_REQUIRE(ar >= 0.75 * 0.99 && ar <= 1.35 * 1.01);
    flips += rng.uniform() < 0.5;
  }
  BOOST_TEST(flips > 900);
  BOOST_TEST(flips < 1100);
  // Aspect drawn log-uniformly: the median of w/h is near sqrt(0.75·1.35) ≈ 1.006, not 1.05.
  std::vector<double> ars;
  for (std::uint64_t s = 0; s < 2001; ++s) {
    Rng rng(s, 1);
    const auto b = rrc.sample_box(1000, 1000, rng);
    ars.push_back(static_cast<double>(b.width) / b.height);
  }
  std::nth_element(ars.begin(), ars.begin() + 1000, ars.end());
  BOOST_TEST(std::abs(ars[1000] - std::sqrt(0.75 * 1.35)) < 0.03);
}

BOOST_AUTO_TEST_CASE(fallback_centre_crop_clamped_to_ratio) {
  // No try can fit a ≥ 30%-area box into a 400x20 strip: fallback h = 20, w = round(20·1.35) = 27,
  // centred: left = (400 − 27) div 2 = 186.
  const auto rrc = data::RandomResizedCrop::vjepa(32);
  Rng rng(5, 0);
  BOOST_TEST((rrc.sample_box(20, 400, rng) == data::CropBox{0, 186, 20, 27}));
  // Tall strip 20x400: w = 20, h = round(20/0.75) = round(26.67) = 27, top = 186.
  BOOST_TEST((rrc.sample_box(400, 20, rng) == data::CropBox{186, 0, 27, 20}));
  // No tries at all: the whole (in-range) frame.
  auto none = rrc;
  none.max_tries = 0;
  BOOST_TEST((none.sample_box(48, 64, rng) == data::CropBox{0, 0, 48, 64}));
}

BOOST_AUTO_TEST_CASE(deterministic_and_shared_across_frames) {
  const std::vector<RgbFrame> clip{pattern_frame(80, 60, 0), pattern_frame(80, 60, 1), pattern_frame(80, 60, 2)};
  const auto rrc = data::RandomResizedCrop::vjepa(32);
  Rng a(11, 4), b(11, 4), c(12, 4);
  data::CropBox ba, bb;
  bool fa = false, fb = false;
  const auto xa = rrc(clip, a, &ba, &fa);
  const auto xb = rrc(clip, b, &bb, &fb);
  const auto xc = rrc(clip, c);
  BOOST_TEST(xa.size() == 3u * 3 * 32 * 32);
  BOOST_TEST(xa == xb, boost::test_tools::per_element());
  BOOST_TEST((ba == bb));
  BOOST_TEST(xa != xc);
  // One box for the whole clip: each frame equals the single-frame transform with that box.
  for (std::size_t f = 0; f < 3; ++f) {
    const auto one = rrc.apply({clip[f]}, ba, fa);
    for (std::size_t ch = 0; ch < 3; ++ch)
      for (std::size_t p = 0; p < 32 * 32; ++p) BOOST_REQUIRE(one[ch * 1024 + p] == xa[(ch * 3 + f) * 1024 + p]);
  }
}

BOOST_AUTO_TEST_CASE(bilinear_matches_pytorch_and_flip_mirrors) {
  // F.interpolate([[0, 255]], size=4, mode="bilinear", align_corners=False) = [0, 63.75, 191.25, 255].
  RgbFrame f(2, 2);
  for (int y = 0; y < 2; ++y)
    for (int c = 0; c < 3; ++c) f.at(0, y)[c] = 0, f.at(1, y)[c] = 255;
  data::RandomResizedCrop rrc = data::RandomResizedCrop::vjepa(4);
  const auto x = rrc.apply({f}, {0, 0, 2, 2}, false);
  const float want[4] = {0.0f, 63.75f, 191.25f, 255.0f};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int i = 0; i < 4; ++i) BOOST_TEST(std::abs(unnorm255(x[static_cast<std::size_t>(c * 16 + y * 4 + i)], c) - want[i]) < 1e-3);
  const auto xf = rrc.apply({f}, {0, 0, 2, 2}, true);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int i = 0; i < 4; ++i) BOOST_TEST(xf[static_cast<std::size_t>(c * 16 + y * 4 + i)] == x[static_cast<std::size_t>(c * 16 + y * 4 + 3 - i)]);
  // A box the size of the output is copied exactly (then normalised).
  const RgbFrame p = pattern_frame(16, 16);
  rrc.size = 8;
  const auto id = rrc.apply({p}, {4, 5, 8, 8}, false);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 8; ++y)
      for (int i = 0; i < 8; ++i) BOOST_REQUIRE(std::abs(unnorm255(id[static_cast<std::size_t>((c * 8 + y) * 8 + i)], c) - p.at(5 + i, 4 + y)[c]) < 1e-3);
}

BOOST_AUTO_TEST_CASE(upscales_frames_smaller_than_the_crop) {
  // Documented behaviour: a 6x4 frame with crop 32 is upsampled, not rejected.
  const auto rrc = data::RandomResizedCrop::vjepa(32);
  Rng rng(3, 3);
  const auto x = rrc({pattern_frame(6, 4)}, rng);
  BOOST_TEST(x.size() == 3u * 32 * 32);
  BOOST_TEST(std::all_of(x.begin(), x.end(), [](float v) { return std::isfinite(v) && v > -2.2f && v < 2.7f; }));
  // Bad clips: frames of different sizes, no frames, an empty frame.
  BOOST_CHECK_THROW(rrc({pattern_frame(6, 4), pattern_frame(7, 4)}, rng), ShapeError);
  BOOST_CHECK_THROW(rrc({}, rng), ShapeError);
  BOOST_CHECK_THROW(rrc({RgbFrame{}}, rng), ShapeError);
  auto bad = rrc;
  bad.scale_min = 0;
  BOOST_CHECK_THROW(bad.sample_box(10, 10, rng), ConfigError);
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------------------------------
// Eval transform (§8.4) and normalisation
// ------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(eval_transform)

BOOST_AUTO_TEST_CASE(sizes_and_round_half_even_offsets) {
  BOOST_TEST(data::EvalTransform{256}.short_side() == 292);
  BOOST_TEST(data::EvalTransform{384}.short_side() == 438);
  BOOST_TEST(data::EvalTransform{224}.short_side() == 256);
  const data::EvalTransform t{256};
  BOOST_TEST((t.resized_size(320, 240) == std::pair<int, int>{389, 292}));   // int(292·320/240) = int(389.33)
  BOOST_TEST((t.resized_size(240, 320) == std::pair<int, int>{292, 389}));
  BOOST_TEST((t.resized_size(1920, 1080) == std::pair<int, int>{519, 292}));  // int(519.11)
  BOOST_TEST((t.resized_size(292, 500) == std::pair<int, int>{292, 500}));    // short side already S: untouched
  BOOST_TEST((t.resized_size(292, 292) == std::pair<int, int>{292, 292}));
  // Python round: (389 − 256)/2 = 66.5 → 66, (391 − 256)/2 = 67.5 → 68, (292 − 256)/2 = 18.
  BOOST_TEST((t.crop_offset(389, 292) == std::pair<int, int>{66, 18}));
  BOOST_TEST((t.crop_offset(391, 293) == std::pair<int, int>{68, 18}));  // 18.5 → 18
  BOOST_TEST((t.crop_offset(292, 295) == std::pair<int, int>{18, 20}));  // 19.5 → 20
  BOOST_TEST(data::round_half_even(2.5) == 2.0);
  BOOST_TEST(data::round_half_even(3.5) == 4.0);
  BOOST_TEST(data::round_half_even(-2.5) == -2.0);
  BOOST_TEST(data::round_half_even(2.4999) == 2.0);
}

BOOST_AUTO_TEST_CASE(opencv_inter_linear_values) {
  // crop 3 → S = int(3·256/224) = 3; a 2x1 frame (short side 1) becomes (int(3·2/1), 3) = 6x3.
  data::EvalTransform t{3};
  RgbFrame f(2, 1);
  for (int c = 0; c < 3; ++c) f.at(0, 0)[c] = 0, f.at(1, 0)[c] = 255;
  const RgbFrame r = t.resize(f);
  BOOST_TEST(r.width == 6);
  BOOST_TEST(r.height == 3);
  // fx = (d + 0.5)/3 − 0.5 = −1/3, 0, 1/3, 2/3, 1, 4/3 → 0, 0, 85, 170, 255, 255 (fixed-point
  // weights rint(f·2048)); cv2.resize(np.array([[0, 255]], uint8), (6, 3)) gives the same.
  const int want[6] = {0, 0, 85, 170, 255, 255};
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 6; ++x) BOOST_TEST(static_cast<int>(r.at(x, y)[1]) == want[x]);
  // Bit-exact with cv2.resize(INTER_LINEAR) (opencv-python-headless 4.14.0 and 5.0.0): sums and
  // position-weighted checksums Σ v·(i mod 251 + 1) of the resized (H,W,3) arrays of
  // (x·7 + y·13 + c·50) mod 256 patterns, crop 16 → S 18: a 37x23 downscale and an 11x7 upscale
  // (whose border rows exercise OpenCV's unclamped vertical weights).
  struct Case { int w, h, ow, oh; long sum, weighted; };
  for (const Case& k : {Case{37, 23, 28, 18, 192366, 24266439}, Case{11, 7, 28, 18, 187296, 24480246}}) {
    const RgbFrame rp = data::EvalTransform{16}.resize(pattern_frame(k.w, k.h));
    BOOST_TEST(rp.width == k.ow);
    BOOST_TEST(rp.height == k.oh);
    long sum = 0, weighted = 0;
    for (std::size_t i = 0; i < rp.rgb.size(); ++i) {
      sum += rp.rgb[i];
      weighted += static_cast<long>(rp.rgb[i]) * static_cast<long>(i % 251 + 1);
    }
    BOOST_TEST(sum == k.sum);
    BOOST_TEST(weighted == k.weighted);
  }
}

BOOST_AUTO_TEST_CASE(centre_crop_and_normalisation) {
  // A frame already at the short side: no resize, the crop is a plain centred window.
  const RgbFrame p = pattern_frame(40, 18);  // crop 16 → S 18; x1 = round(12) = 12, y1 = round(1) = 1
  const data::EvalTransform t{16};
  const auto x = t({p, p});
  BOOST_TEST(x.size() == 3u * 2 * 16 * 16);
  for (int c = 0; c < 3; ++c)
    for (int f = 0; f < 2; ++f)
      for (int y = 0; y < 16; ++y)
        for (int i = 0; i < 16; ++i) {
          const float v = x[static_cast<std::size_t>(((c * 2 + f) * 16 + y) * 16 + i)];
          const float want = (static_cast<float>(p.at(12 + i, 1 + y)[c]) / 255.0f - data::kImagenetMean[static_cast<std::size_t>(c)]) /
                             data::kImagenetStd[static_cast<std::size_t>(c)];
          BOOST_REQUIRE(v == want);
        }
  // ImageNet normalisation of known values: 0 → −mean/std, 255 → (1 − mean)/std.
  RgbFrame k(1, 1);
  k.rgb = {0, 255, 124};
  const auto n = data::frames_to_clip({k});
  BOOST_TEST(std::abs(n[0] - (-0.485f / 0.229f)) < 1e-6f);
  BOOST_TEST(std::abs(n[1] - ((1.0f - 0.456f) / 0.224f)) < 1e-6f);
  BOOST_TEST(std::abs(n[2] - ((124.0f / 255.0f - 0.406f) / 0.225f)) < 1e-6f);
  // Small frames are upsampled to S then cropped (no error).
  const auto up = data::EvalTransform{32}({pattern_frame(6, 4)});
  BOOST_TEST(up.size() == 3u * 32 * 32);
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------------------------------
// VideoReader (FFmpeg) and read_image (stb)
// ------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(video_reader)

BOOST_AUTO_TEST_CASE(properties) {
  REQUIRE_MEDIA();
  io::VideoReader v(media().mp4.string());
  BOOST_TEST(v.width() == 96);
  BOOST_TEST(v.height() == 64);
  BOOST_TEST(v.fps() == 30.0);
  BOOST_TEST(v.frame_count() == 60);
  BOOST_TEST(v.frame_count_exact());
  BOOST_TEST(std::abs(v.duration() - 2.0) < 0.05);
  BOOST_TEST(v.codec_name() == "h264");
  io::VideoReader a(media().avi.string());
  BOOST_TEST(a.width() == 80);
  BOOST_TEST(a.height() == 48);
  BOOST_TEST(a.fps() == 25.0);
  BOOST_TEST(a.frame_count() == 25);
  BOOST_TEST(a.codec_name() == "mjpeg");
  // Matroska declares no frame count: estimated from duration·fps, exact after decoding to the end.
  io::VideoReader k(media().mkv.string());
  BOOST_TEST(!k.frame_count_exact());
  BOOST_TEST(std::abs(k.frame_count() - 30) <= 1);
  BOOST_TEST(k.count_frames() == 30);
  BOOST_TEST(k.frame_count_exact());
}

BOOST_AUTO_TEST_CASE(pixels_match_ffmpeg_rgb24) {
  REQUIRE_MEDIA();
  io::VideoReader v(media().mp4.string());
  const auto got = v.read_frames({0, 17, 59});
  BOOST_TEST(got.size() == 3u);
  BOOST_TEST(got[0].width == 96);
  const int d = max_abs_diff(got, ffmpeg_rgb(media().mp4, {0, 17, 59}));
  BOOST_TEST_MESSAGE("H.264 max |ours − ffmpeg rgb24| = " << d);
  BOOST_TEST(d <= 2);
  BOOST_TEST(got[0].rgb != got[1].rgb);  // testsrc moves: distinct frames
  // MJPEG (full-range yuvj420p).
  io::VideoReader a(media().avi.string());
  const auto ga = a.read_frames({3, 24});
  const int da = max_abs_diff(ga, ffmpeg_rgb(media().avi, {3, 24}));
  BOOST_TEST_MESSAGE("MJPEG max |ours − ffmpeg rgb24| = " << da);
  BOOST_TEST(da <= 2);
}

BOOST_AUTO_TEST_CASE(order_repeats_seek_and_padding) {
  REQUIRE_MEDIA();
  // Sequential reference: every frame of the 120-frame, GOP-10 file.
  io::VideoReader all(media().gop.string());
  const auto seq = all.read_all();
  BOOST_TEST(seq.size() == 120u);
  // Far-ahead first index: the reader seeks to the keyframe before frame 101 and numbers frames by
  // timestamp; the result must equal sequential decoding, in the requested order, with repeats.
  io::VideoReader v(media().gop.string());
  const auto got = v.read_frames({101, 7 + 100, 101, 119});
  BOOST_TEST(got[0].rgb == seq[101].rgb);
  BOOST_TEST(got[1].rgb == seq[107].rgb);
  BOOST_TEST(got[2].rgb == seq[101].rgb);
  BOOST_TEST(got[3].rgb == seq[119].rgb);
  BOOST_TEST(v.last_padded() == 0u);
  // Going backwards in a second call (reopen or seek), then past the end: padded with frame 119.
  const auto back = v.read_frames({3, 70, 130, 500});
  BOOST_TEST(back[0].rgb == seq[3].rgb);
  BOOST_TEST(back[1].rgb == seq[70].rgb);
  BOOST_TEST(back[2].rgb == seq[119].rgb);
  BOOST_TEST(back[3].rgb == seq[119].rgb);
  BOOST_TEST(v.last_padded() == 2u);
  BOOST_TEST(max_abs_diff({got[0]}, ffmpeg_rgb(media().gop, {101})) <= 2);
  // Seeking disabled (seek_ahead huge) gives the same frames.
  io::VideoReader ns(media().gop.string(), {1, 1 << 30});
  BOOST_TEST(ns.read_frames({101})[0].rgb == seq[101].rgb);
  BOOST_CHECK_THROW(v.read_frames({-1}), IndexError);
  // read_all after seeks starts again from frame 0.
  v.read_frames({90});
  const auto again = v.read_all(3);
  BOOST_TEST(again.size() == 3u);
  BOOST_TEST(again[0].rgb == seq[0].rgb);
  BOOST_TEST(again[2].rgb == seq[2].rgb);
}

BOOST_AUTO_TEST_CASE(short_video_is_padded_not_an_error) {
  REQUIRE_MEDIA();
  io::VideoReader v(media().short5.string());
  BOOST_TEST(v.frame_count() == 5);
  Rng rng(0, 0);
  const auto idx = data::sample_frame_indices(v.frame_count(), v.fps(), 16, 4, rng);
  const auto frames = v.read_frames(idx);
  BOOST_TEST(frames.size() == 16u);
  BOOST_TEST(frames[0].rgb == frames[15].rgb);
  // Asking past the end directly: the last decoded frame is repeated.
  const auto p = v.read_frames({2, 4, 9});
  BOOST_TEST(p[1].rgb == p[2].rgb);
  BOOST_TEST(p[0].rgb != p[1].rgb);
  BOOST_TEST(v.last_padded() == 1u);
}

BOOST_AUTO_TEST_CASE(bad_files_throw_io_error_naming_the_file) {
  REQUIRE_MEDIA();
  auto expect_io = [](const fs::path& p, const std::string& fragment) {
    try {
      io::VideoReader v(p.string());
      (void)v.read_frames({0, 1, 2});
      BOOST_ERROR("no exception for " << p);
    } catch (const IoError& e) {
      BOOST_TEST_MESSAGE(e.what());
      BOOST_TEST(message_has(e, p.string()), e.what());
      BOOST_TEST(message_has(e, fragment), e.what());
    }
  };
  expect_io(media().dir / "missing.mp4", "does not exist");
  expect_io(media().junk, "Invalid data");
  expect_io(media().textfile, "Invalid data");
  expect_io(media().truncated, "could not");   // mp4 without its moov atom
  expect_io(media().audio, "no video stream");
  expect_io(media().dir, "directory");
  // Garbage in the middle of an H.264 stream: libavcodec rejects the packet → IoError mid-stream.
  expect_io(media().damaged_h264, "decode error");
  // Damaged MJPEG (concealed by the decoder, the stream ends early) and a cut H.264 file: either
  // frames come back, padded with the last decoded one, or IoError naming the file; never a crash.
  for (const auto& p : {media().damaged, media().cut_h264}) {
    try {
      io::VideoReader v(p.string());
      const auto f = v.read_frames({0, 10, 24, 59});
      BOOST_TEST(f.size() == 4u);
      BOOST_TEST_MESSAGE(p << ": decoded, " << v.last_padded() << " of 4 padded, " << v.frame_count() << " frames");
    } catch (const IoError& e) {
      BOOST_TEST_MESSAGE(e.what());
      BOOST_TEST(message_has(e, p.string()));
    }
  }
}

BOOST_AUTO_TEST_CASE(read_image_png_and_errors) {
  const fs::path d = media().dir;
  io::RgbImage img(5, 3);
  for (std::size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<std::uint8_t>(i * 5);
  io::write_png((d / "p.png").string(), img);
  const auto f = io::read_image((d / "p.png").string());
  BOOST_TEST(f.width == 5);
  BOOST_TEST(f.height == 3);
  BOOST_TEST(f.rgb == img.data, boost::test_tools::per_element());
  std::ofstream(d / "bad.png") << "not a png at all";
  BOOST_CHECK_EXCEPTION(io::read_image((d / "bad.png").string()), IoError,
                        [&](const IoError& e) { return message_has(e, "bad.png") && message_has(e, "is not a readable image"); });
  BOOST_CHECK_EXCEPTION(io::read_image((d / "nope.png").string()), IoError,
                        [&](const IoError& e) { return message_has(e, "nope.png") && message_has(e, "does not exist"); });
}

// stb_image's bare reasons ("unknown image type", "too large") become sentences about the file.
BOOST_AUTO_TEST_CASE(read_image_failures_are_sentences) {
  const fs::path d = media().dir;
  std::ofstream(d / "text.png") << "not a png at all";
  BOOST_CHECK_EXCEPTION(io::read_image((d / "text.png").string()), IoError, [&](const IoError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return message_has(e, "image file '" + (d / "text.png").string() + "' is not a readable image (stb: unknown image type");
  });
  // A header claiming 30000x30000: more than stb decodes, said with the size (stbi_info itself refuses
  // to report it), on every machine (before any memory check).
  write_png_header(d / "huge.png", 30000, 30000);
  BOOST_CHECK_EXCEPTION(io::read_image((d / "huge.png").string()), IoError, [&](const IoError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return message_has(e, (d / "huge.png").string()) && message_has(e, "is 30000x30000, larger than stb_image decodes");
  });
  // A JPEG's size is read from its SOF marker: a tiny JPEG with the size patched to 40000x40000.
  io::RgbImage img(8, 8);
  BOOST_REQUIRE(stbi_write_jpg((d / "patched.jpg").c_str(), 8, 8, 3, img.data.data(), 90));
  auto j = read_bytes(d / "patched.jpg");
  for (std::size_t i = 2; i + 9 < j.size(); ++i)
    if (j[i] == 0xFF && j[i + 1] == 0xC0) {
      j[i + 5] = j[i + 7] = 40000 >> 8;
      j[i + 6] = j[i + 8] = 40000 & 255;
      break;
    }
  write_bytes(d / "patched.jpg", j);
  BOOST_CHECK_EXCEPTION(io::read_image((d / "patched.jpg").string()), IoError, [&](const IoError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return message_has(e, "is 40000x40000, larger than stb_image decodes");
  });
  // Damaged data: the file, "damaged", and stb's reason.
  std::ofstream(d / "cut.png", std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8) << "garbage";
  BOOST_CHECK_EXCEPTION(io::read_image((d / "cut.png").string()), IoError, [&](const IoError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return message_has(e, "cut.png") && message_has(e, "(stb: ");
  });
}

// An image whose pixels alone exceed the memory left is refused before stb allocates them.
BOOST_AUTO_TEST_CASE(read_image_refuses_what_memory_cannot_hold) {
  const fs::path p = media().dir / "big_header.png";
  write_png_header(p, 16000, 16000);
  ScopedEnv limit("JEPA_MEMORY_LIMIT", "256M");
  BOOST_CHECK_EXCEPTION(io::read_image(p.string()), MemoryError, [&](const MemoryError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return message_has(e, p.string()) && message_has(e, "16000x16000") && message_has(e, "JEPA_MEMORY_LIMIT");
  });
}

// FFmpeg's own log lines stay off stderr; the one exception per bad file carries FFmpeg's reason,
// and an oversized frame is named with its size and the limit instead of "Device or resource busy".
BOOST_AUTO_TEST_CASE(ffmpeg_log_silenced_and_oversized_frames_named) {
  REQUIRE_MEDIA();
  const fs::path d = media().dir;
  // A YUV4MPEG2 header claiming 30000x30000 frames (FFmpeg: "Picture size 30000x30000 is invalid",
  // then EBUSY from the demuxer).
  std::ofstream(d / "huge.y4m", std::ios::binary) << "YUV4MPEG2 W30000 H30000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" << std::string(1000, '\0');
  // A one-frame MJPEG AVI whose JPEG header says 30000x30000 (the container says 16x16).
  BOOST_REQUIRE(sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=16x16:rate=1 -frames:v 1 -c:v mjpeg " + q(d / "sof.avi")));
  auto a = read_bytes(d / "sof.avi");
  for (std::size_t i = 0; i + 9 < a.size(); ++i)
    if (a[i] == 0xFF && a[i + 1] == 0xC0) {
      a[i + 5] = a[i + 7] = 30000 >> 8;
      a[i + 6] = a[i + 8] = 30000 & 255;
    }
  write_bytes(d / "sof.avi", a);

  av_log_set_level(AV_LOG_INFO);  // FFmpeg's default verbosity: what a user's program runs with
  StderrCapture cap(d / "stderr.txt");
  std::vector<std::string> msgs;
  for (const fs::path& p : {d / "huge.y4m", d / "sof.avi", media().junk, media().truncated, media().damaged_h264}) {
    try {
      io::VideoReader v(p.string());
      (void)v.read_frames({0, 1, 2});
      msgs.push_back("no error for " + p.string());
    } catch (const IoError& e) {
      msgs.push_back(e.what());
    }
  }
  const std::string logged = cap.stop();
  av_log_set_level(AV_LOG_QUIET);
  for (const auto& m : msgs) BOOST_TEST_MESSAGE(m);
  BOOST_TEST(logged.empty(), "FFmpeg wrote to stderr: " << logged);
  BOOST_REQUIRE(msgs.size() == 5u);
  for (int k : {0, 1}) {
    BOOST_TEST(msgs[k].find("30000x30000, larger than FFmpeg decodes") != std::string::npos, msgs[k]);
    BOOST_TEST(msgs[k].find(k ? "sof.avi" : "huge.y4m") != std::string::npos, msgs[k]);
  }
  BOOST_TEST(msgs[3].find("t.mp4") != std::string::npos, msgs[3]);
  BOOST_TEST(msgs[3].find("(FFmpeg: ") != std::string::npos, msgs[3]);  // "moov atom not found"
}

// A frame too large for the memory left is refused when the file is opened, before decoding.
BOOST_AUTO_TEST_CASE(frames_too_large_for_memory_refused_at_open) {
  REQUIRE_MEDIA();
  const fs::path p = media().dir / "large.avi";  // 4000x4000: 24 MB decoded + 48 MB RGB > 64 MiB
  BOOST_REQUIRE(sh("ffmpeg -nostdin -v error -y -f lavfi -i color=c=blue:s=4000x4000 -frames:v 1 -c:v mjpeg -pix_fmt yuvj420p " + q(p)));
  {
    ScopedEnv limit("JEPA_MEMORY_LIMIT", "64M");
    BOOST_CHECK_EXCEPTION(io::VideoReader(p.string()), MemoryError, [&](const MemoryError& e) {
      BOOST_TEST_MESSAGE(e.what());
      return message_has(e, p.string()) && message_has(e, "4000x4000") && message_has(e, "JEPA_MEMORY_LIMIT");
    });
  }
  io::VideoReader v(p.string());  // without the cap it decodes
  BOOST_TEST(v.read_frames({0})[0].width == 4000);
}

// visit_frames: each distinct frame once, with every position asking for it; padding last.
BOOST_AUTO_TEST_CASE(visit_frames_hands_each_frame_once) {
  REQUIRE_MEDIA();
  io::VideoReader all(media().short5.string());
  const auto seq = all.read_all();
  io::VideoReader v(media().short5.string());
  std::vector<std::vector<std::size_t>> calls;
  std::vector<std::vector<std::uint8_t>> got(6);
  v.visit_frames({3, 1, 3, 9, 12, 1}, [&](RgbFrame& f, const std::vector<std::size_t>& at) {
    calls.push_back(at);
    for (const auto k : at) got[k] = f.rgb;
  });
  BOOST_REQUIRE(calls.size() == 3u);  // frame 1, frame 3, then the padding (frame 4) for 9 and 12
  BOOST_TEST((calls[0] == std::vector<std::size_t>{1, 5}));
  BOOST_TEST((calls[1] == std::vector<std::size_t>{0, 2}));
  BOOST_TEST((calls[2] == std::vector<std::size_t>{3, 4}));
  BOOST_TEST(got[0] == seq[3].rgb);
  BOOST_TEST(got[1] == seq[1].rgb);
  BOOST_TEST(got[3] == seq[4].rgb);
  BOOST_TEST(v.last_padded() == 2u);
}

// Output paths are checked before the work: created and removed, the system's reason when not.
BOOST_AUTO_TEST_CASE(png_output_checked_before_work) {
  const fs::path d = media().dir;
  const fs::path ok = d / "will_be_written.png";
  io::check_writable(ok.string(), "--png");
  BOOST_TEST(!fs::exists(ok));  // probed, not left behind
  std::ofstream(d / "existing.png") << "keep me";
  io::check_writable((d / "existing.png").string(), "--png");
  BOOST_TEST(read_bytes(d / "existing.png").size() == 7u);  // not truncated
  const std::string missing = (d / "no_such_dir" / "x.png").string();
  BOOST_CHECK_EXCEPTION(io::check_writable(missing, "--png"), IoError, [&](const IoError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return message_has(e, "--png '" + missing + "' cannot be written: No such file or directory");
  });
  BOOST_CHECK_EXCEPTION(io::check_writable(d.string(), "--png"), IoError,
                        [&](const IoError& e) { return message_has(e, "is a directory"); });
  BOOST_CHECK_EXCEPTION(io::write_png(missing, io::RgbImage(2, 2)), IoError, [&](const IoError& e) {
    BOOST_TEST_MESSAGE(e.what());
    return message_has(e, missing) && message_has(e, "No such file or directory");
  });
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------------------------------------------
// Folder datasets
// ------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(folders)

BOOST_AUTO_TEST_CASE(video_folder_listing_labels_and_samples) {
  REQUIRE_MEDIA();
  data::VideoFolder ds(media().videos, 8, 4, 32, true);
  // Sorted relative paths; hidden and non-video files ignored; extensions case-insensitive.
  BOOST_TEST(ds.size() == 4u);
  BOOST_TEST((ds.classes() == std::vector<std::string>{"cats", "dogs"}));
  BOOST_TEST(ds.path(0) == (media().videos / "cats" / "c1.AVI").string());
  BOOST_TEST(ds.path(1) == (media().videos / "cats" / "sub" / "c2.mp4").string());
  BOOST_TEST(ds.path(2) == (media().videos / "dogs" / "d1.mp4").string());
  BOOST_TEST(ds.path(3) == (media().videos / "top.mkv").string());
  BOOST_TEST(ds.label(0) == 0);
  BOOST_TEST(ds.label(1) == 0);
  BOOST_TEST(ds.label(2) == 1);
  BOOST_TEST(ds.label(3) == -1);
  const auto s = ds.get(2, 42);
  BOOST_TEST(s.pixels.size() == 3u * 8 * 32 * 32);
  BOOST_TEST(s.frames == 8);
  BOOST_TEST(s.height == 32);
  BOOST_TEST(s.label == 1);
  BOOST_TEST(s.source == ds.path(2));
  BOOST_TEST(ds.get(2, 42).pixels == s.pixels);  // deterministic in (index, epoch seed)
  BOOST_TEST(ds.get(2, 43).pixels != s.pixels);
  // The 5-frame video is padded, not an error; eval mode is deterministic.
  BOOST_TEST(ds.get(1, 0).pixels.size() == 3u * 8 * 32 * 32);
  data::VideoFolder ev(media().videos, 8, 4, 32, false);
  BOOST_TEST(ev.get(3, 1).pixels == ev.get(3, 2).pixels);
  BOOST_CHECK_THROW(ds.get(4, 0), IndexError);
}

BOOST_AUTO_TEST_CASE(video_folder_matches_manual_pipeline) {
  REQUIRE_MEDIA();
  data::VideoFolder ds(media().videos, 8, 4, 32, true);
  const auto s = ds.get(2, 9);
  Rng rng(9, 2);
  io::VideoReader v(ds.path(2));
  const auto idx = data::sample_frame_indices(v.frame_count(), v.fps(), 8, 4, rng);
  const auto x = data::RandomResizedCrop::vjepa(32)(v.read_frames(idx), rng);
  BOOST_TEST(x == s.pixels);
}

BOOST_AUTO_TEST_CASE(frame_folder) {
  data::FrameFolder ds(media().frames, 4, 16, false, 3);  // step 3, eval
  BOOST_TEST(ds.size() == 2u);
  BOOST_TEST((ds.classes() == std::vector<std::string>{"run", "walk"}));
  BOOST_TEST(ds.path(0) == (media().frames / "run" / "v1").string());
  BOOST_TEST(ds.label(0) == 0);
  BOOST_TEST(ds.label(1) == 1);
  BOOST_TEST(ds.video_length(0) == 12u);
  const auto s = ds.get(1, 0);
  BOOST_TEST(s.pixels.size() == 3u * 4 * 16 * 16);
  // Eval, first window: clip_len 12 = video length → linspace(0, 12, 4) clipped → frames 0, 4, 8, 11;
  // channel B encodes the frame number (f·20, v = 0), constant over the frame.
  const int want[4] = {0, 4, 8, 11};
  for (int f = 0; f < 4; ++f) {
    const float b = unnorm255(s.pixels[static_cast<std::size_t>((2 * 4 + f) * 256 + 37)], 2);
    BOOST_TEST(std::abs(b - 20.0f * want[f]) < 0.01f);
  }
  data::FrameFolder tr(media().frames, 4, 16, true, 1);
  BOOST_TEST(tr.get(0, 5).pixels == tr.get(0, 5).pixels);
}

BOOST_AUTO_TEST_CASE(image_folder_and_repeat_frames) {
  data::ImageFolder ds(media().images, 32, false);
  BOOST_TEST(ds.size() == 3u);
  BOOST_TEST((ds.classes() == std::vector<std::string>{"a", "b"}));
  BOOST_TEST(ds.label(0) == 0);
  BOOST_TEST(ds.label(2) == 1);
  const auto s = ds.get(0, 0);
  BOOST_TEST(s.frames == 1);
  BOOST_TEST(s.pixels.size() == 3u * 32 * 32);
  BOOST_TEST(std::abs(unnorm255(s.pixels[0], 0) - 11.0f) < 1e-3);  // constant image, value 11
  // The 20x12 image is smaller than the 32 crop: upsampled (eval and train), not an error.
  BOOST_TEST(ds.get(2, 0).pixels.size() == 3u * 32 * 32);
  data::ImageFolder rep(media().images, 32, true, 4);
  const auto r = rep.get(2, 7);
  BOOST_TEST(r.frames == 4);
  BOOST_TEST(r.pixels.size() == 3u * 4 * 32 * 32);
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t f = 1; f < 4; ++f)
      BOOST_REQUIRE(std::equal(r.pixels.begin() + static_cast<std::ptrdiff_t>((c * 4) * 1024),
                               r.pixels.begin() + static_cast<std::ptrdiff_t>((c * 4 + 1) * 1024),
                               r.pixels.begin() + static_cast<std::ptrdiff_t>((c * 4 + f) * 1024)));
}

BOOST_AUTO_TEST_CASE(empty_and_missing_folders) {
  BOOST_CHECK_EXCEPTION(data::VideoFolder(media().empty, 8, 4, 32, true), ConfigError, [&](const ConfigError& e) {
    return message_has(e, media().empty.string()) && message_has(e, ".mp4") && message_has(e, ".webm");
  });
  BOOST_CHECK_EXCEPTION(data::ImageFolder(media().empty, 32, true), ConfigError,
                        [&](const ConfigError& e) { return message_has(e, media().empty.string()) && message_has(e, ".png"); });
  BOOST_CHECK_EXCEPTION(data::FrameFolder(media().empty, 4, 32, true), ConfigError,
                        [&](const ConfigError& e) { return message_has(e, media().empty.string()) && message_has(e, ".jpg"); });
  const fs::path missing = media().dir / "no_such_folder";
  BOOST_CHECK_EXCEPTION(data::VideoFolder(missing, 8, 4, 32, true), IoError,
                        [&](const IoError& e) { return message_has(e, missing.string()) && message_has(e, "does not exist"); });
  const fs::path file = media().frames / "walk" / "v0" / "000.png";
  BOOST_CHECK_EXCEPTION(data::ImageFolder(file, 32, true), IoError,
                        [&](const IoError& e) { return message_has(e, file.string()) && message_has(e, "not a directory"); });
  BOOST_CHECK_THROW(data::VideoFolder(media().videos, 0, 4, 32, true), ConfigError);
}

BOOST_AUTO_TEST_CASE(bad_sample_is_reported_and_skippable) {
  REQUIRE_MEDIA();
  const fs::path root = media().dir / "mixed";
  fs::create_directories(root);
  fs::copy_file(media().mp4, root / "a_good.mp4", fs::copy_options::overwrite_existing);
  fs::copy_file(media().junk, root / "b_corrupt.mp4", fs::copy_options::overwrite_existing);
  fs::copy_file(media().truncated, root / "c_truncated.mp4", fs::copy_options::overwrite_existing);
  data::VideoFolder ds(root, 4, 4, 16, true);
  BOOST_TEST(ds.size() == 3u);
  BOOST_CHECK_EXCEPTION(ds.get(1, 0), IoError, [&](const IoError& e) { return message_has(e, "b_corrupt.mp4"); });
  int good = 0;
  for (std::size_t i = 0; i < ds.size(); ++i) {
    const auto r = ds.try_get(i, 0);
    if (r) ++good;
    else {
      BOOST_TEST(!r.error.empty());
      BOOST_TEST(message_has(std::runtime_error(r.error), ds.path(i)), r.error);
    }
  }
  BOOST_TEST(good == 1);
  BOOST_CHECK_THROW(ds.try_get(3, 0), IndexError);
  // A corrupt image in an image folder: IoError naming it; try_get reports it.
  const fs::path iroot = media().dir / "mixed_images";
  fs::create_directories(iroot);
  io::write_png((iroot / "ok.png").string(), io::RgbImage(8, 8));
  std::ofstream(iroot / "zz_broken.jpg") << "garbage";
  data::ImageFolder im(iroot, 8, false);
  BOOST_TEST(im.try_get(0, 0).sample.has_value());
  const auto bad = im.try_get(1, 0);
  BOOST_TEST(!bad);
  BOOST_TEST(message_has(std::runtime_error(bad.error), "zz_broken.jpg"), bad.error);
}

BOOST_AUTO_TEST_SUITE_END()
