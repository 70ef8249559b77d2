"""Build of the optional C extension `polyoms._speedups`; everything else is declared in pyproject.toml.

`optional=True`: without a working C compiler (or Python headers) the build prints a warning, the
package installs without the extension and runs the pure-Python path (polyoms/core/speedups.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "polyoms._speedups",
            sources=["src/polyoms/_speedups.c"],
            optional=True,
        )
    ]
)
