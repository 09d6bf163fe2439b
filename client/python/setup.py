"""pip install client/python  (offline: setuptools comes from Debian's python3-setuptools)."""
import os
import re

from setuptools import setup

# The version is written once for Python, in rollout/__init__.py (CMake checks it against
# project(VERSION)).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rollout", "__init__.py")) as f:
    VERSION = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

setup(
    name="rollout",
    version=VERSION,
    description="Python binding of librollout: sandbox actions through rolloutd (ctypes, stdlib only)",
    packages=["rollout"],
    package_data={"rollout": ["py.typed"]},
    python_requires=">=3.9",
)
