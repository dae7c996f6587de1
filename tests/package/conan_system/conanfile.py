"""A Conan recipe that stands for a Conan Center package by wrapping the copy installed on the system.

The package tests have no access to Conan Center. They export this recipe once per package jepa
requires (`conan export . --name eigen --version system`), and a profile's [replace_requires] points the
real requirement at it (`eigen/*: eigen/system`). Its package is empty; package_info() points the
consumer at the system headers and gives the CMake file and target names Conan Center's recipe uses,
so CMakeDeps generates the same find_package() names a real Conan Center package would.
"""
import os

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration

# name -> (include directory, a header that must exist there, CMake file name, CMake target, Debian package)
SYSTEM_PACKAGES = {
    "eigen": ("/usr/include/eigen3", "Eigen/Core", "Eigen3", "Eigen3::Eigen", "libeigen3-dev"),
    "nlohmann_json": ("/usr/include", "nlohmann/json.hpp", "nlohmann_json", "nlohmann_json::nlohmann_json",
                      "nlohmann-json3-dev"),
    "xtl": ("/usr/include", "xtl/xtl_config.hpp", "xtl", "xtl", "xtl-dev"),
    "xsimd": ("/usr/include", "xsimd/xsimd.hpp", "xsimd", "xsimd", "libxsimd-dev"),
    "xtensor": ("/usr/include", "xtensor/xtensor.hpp", "xtensor", "xtensor", "xtensor-dev"),
}


class SystemHeaderPackage(ConanFile):
    package_type = "header-library"
    description = "System copy of a header-only Conan Center package (jepa's package tests)"
    license = "system"

    def _entry(self):
        if self.name not in SYSTEM_PACKAGES:
            raise ConanInvalidConfiguration(f"no system mapping for '{self.name}' (known: {', '.join(SYSTEM_PACKAGES)})")
        return SYSTEM_PACKAGES[self.name]

    def validate(self):
        include, probe, _, _, deb = self._entry()
        if not os.path.isfile(os.path.join(include, probe)):
            raise ConanInvalidConfiguration(f"{self.name}: {include}/{probe} not found (install {deb})")

    def package_id(self):
        self.info.clear()

    def package(self):
        pass  # nothing to copy: the headers stay where the system installed them

    def package_info(self):
        include, _, file_name, target, _ = self._entry()
        self.cpp_info.includedirs = [include]
        self.cpp_info.libdirs = []
        self.cpp_info.bindirs = []
        self.cpp_info.set_property("cmake_file_name", file_name)
        self.cpp_info.set_property("cmake_target_name", target)
