"""
gearman_tw: a Gearman job server, client and worker library for Twisted.
"""

import os

from setuptools import setup

here = os.path.dirname(os.path.abspath(__file__))
version: dict = {}
with open(os.path.join(here, "gearman_tw", "_version.py")) as f:
    exec(f.read(), version)
with open(os.path.join(here, "README.md"), encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="gearman_tw",
    version=version["__version__"],
    description="A Gearman job server, client and worker library built on Twisted",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=["gearman_tw", "gearman_tw.server", "gearman_tw.queues", "twisted.plugins"],
    package_data={"gearman_tw": ["py.typed"], "gearman_tw.server": ["monitor.html", "*.json"]},
    entry_points={"console_scripts": ["gearman-tw = gearman_tw.cli:run"]},
    install_requires=[
        "twisted>=22.10",
        "zope.interface>=5",
    ],
    extras_require={
        "tls": ["pyOpenSSL>=22", "service_identity>=21"],
        "redis": ["txredisapi>=1.4"],
        "http": ["prometheus_client>=0.17"],
        "test": ["hypothesis>=6", "treq>=22.1", "pyOpenSSL>=22", "service_identity>=21"],
        "docs": ["sphinx>=6", "pydoctor>=25.10"],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Distributed Computing",
    ],
)
