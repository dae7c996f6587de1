"""Conan 2 recipe of jepa, a header-only C++20 library (a `header-library` package).

    conan create . --build=missing                       # package + test_package/
    conan create . -o "jepa/*:with_cuda=True"            # adds the jepa::cuda component

Consumers use the CMakeDeps names of the CMake package: find_package(jepa CONFIG REQUIRED) and the
targets jepa::jepa (and jepa::cuda with with_cuda=True).
"""
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class JepaConan(ConanFile):
    name = "jepa"
    description = ("Header-only C++20 library that trains and runs the JEPA family of self-supervised "
                   "vision models (I-JEPA, V-JEPA, V-JEPA 2, V-JEPA 2-AC, V-JEPA 2.1)")
    license = "Apache-2.0"
    topics = ("self-supervised-learning", "vision-transformer", "jepa", "header-only", "eigen", "cuda")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_cuda": [True, False],    # jepa::cuda: CUDA runtime, cuBLAS, cuBLASLt from the CUDA Toolkit
        "with_openmp": [True, False],  # parallel CPU primitives (the compiler's OpenMP)
        "with_onednn": [True, False],  # the system's oneDNN (Debian: libdnnl-dev) as the CPU GEMM provider
    }
    default_options = {"with_cuda": False, "with_openmp": True, "with_onednn": False}
    exports_sources = "include/*", "LICENSE"
    no_copy_source = True

    def set_version(self):
        # One version for every package format: the `project(jepa VERSION ...)` of CMakeLists.txt.
        if not self.version:
            text = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
            self.version = re.search(r"project\(\s*jepa\s+VERSION\s+([0-9.]+)", text).group(1)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # Conan Center names; only headers and compile flags cross into the consumer.
        self.requires("eigen/3.4.0")
        self.requires("nlohmann_json/3.11.3")  # jepa/io/safetensors.hpp

    def package_id(self):
        self.info.clear()

    def validate(self):
        if self.settings.compiler.get_safe("cppstd"):
            check_min_cppstd(self, 20)
        if self.options.with_cuda and self.settings.os not in ("Linux", "Windows"):
            raise ConanInvalidConfiguration("jepa: with_cuda needs Linux or Windows (the CUDA Toolkit)")

    def build(self):
        pass  # header-only

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        for pattern in ("*.hpp", "*.cuh", "*.h", "*.inc"):  # .inc: attention_kernels.inc
            copy(self, pattern, os.path.join(self.source_folder, "include"),
                 os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "jepa")
        self.cpp_info.set_property("cmake_target_name", "jepa::jepa")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "jepa::jepa")
        core.bindirs = []
        core.libdirs = []
        core.requires = ["eigen::eigen", "nlohmann_json::nlohmann_json"]
        if self.options.with_openmp:
            compiler = str(self.settings.compiler)
            flag = {"gcc": "-fopenmp", "clang": "-fopenmp", "intel-cc": "-qopenmp", "msvc": "/openmp"}.get(compiler)
            if flag:  # (apple-clang needs a separate libomp: no flag, the pragmas compile to nothing)
                core.cxxflags.append(flag)
                if compiler != "msvc":
                    core.sharedlinkflags.append(flag)
                    core.exelinkflags.append(flag)

        if self.options.with_onednn:
            # oneDNN is taken from the system (its OpenMP build, as the CMake package requires), like the
            # CUDA Toolkit below; jepa/backend/cpu/gemm.hpp then picks it at run time.
            core.defines.append("JEPA_HAVE_ONEDNN")
            core.system_libs.append("dnnl")

        if self.options.with_cuda:
            cuda = self.cpp_info.components["cuda"]
            cuda.set_property("cmake_target_name", "jepa::cuda")
            cuda.bindirs = []
            cuda.libdirs = []
            cuda.requires = ["core"]
            cuda.defines = ["JEPA_HAVE_CUDA"]
            # The CUDA Toolkit is not a Conan package: it is found on the system (CUDA_PATH or
            # /usr/local/cuda), as with the CMake package's cuda component.
            cuda.system_libs = ["cudart_static", "cublas", "cublasLt"]
            if self.settings.os == "Linux":
                cuda.system_libs += ["dl", "rt", "pthread"]
