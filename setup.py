"""Builds the optional native fan-out (sfu/_fastpath.c). Everything else is in pyproject.toml.

When it cannot be built (no compiler or no OpenSSL headers), the package installs
without it and sfu/fanout.py's pure-Python fan-out is used instead.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # the fallback keeps the server working
            sys.stderr.write(f"warning: native fan-out not built ({exc}); using the fallback\n")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            sys.stderr.write(f"warning: {ext.name} not built ({exc}); using the fallback\n")


SANITIZE = bool(os.environ.get("STAGE_SFU_NATIVE_SANITIZE"))
extra = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
if SANITIZE:
    extra = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]

setup(
    ext_modules=[
        Extension(
            "sfu._fastpath",
            sources=["sfu/_fastpath.c"],
            depends=["sfu/_fastpath_vp8.h", "sfu/_fastpath_pacer.h", "sfu/_fastpath_egress.h"],
            libraries=["crypto"],
            extra_compile_args=extra,
            extra_link_args=["-fsanitize=address"] if SANITIZE else [],
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
