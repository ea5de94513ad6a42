"""
Builds the optional C speedups (sudp/_speedups.c). Everything else about the
package is in pyproject.toml. If no C compiler is at hand the build goes on
without them and sudp runs its pure-Python data path (sudp/speedups.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("sudp._speedups", ["sudp/_speedups.c"], optional=True, extra_compile_args=["-O2"]),
    ],
)
