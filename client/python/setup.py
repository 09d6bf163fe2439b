"""pip install client/python  (offline: setuptools comes from Debian's python3-setuptools)."""
from setuptools import setup

setup(
    name="rollout",
    version="0.1.0",
    description="Python binding of librollout: sandbox actions through rolloutd (ctypes, stdlib only)",
    packages=["rollout"],
    package_data={"rollout": ["py.typed"]},
    python_requires=">=3.9",
)
