"""
gearman_tw: a Gearman job server, client and worker library for Twisted.
"""

import os

from setuptools import find_packages, setup

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
    # The twistd dropins live in twisted/plugins/ (no __init__.py: Twisted's
    # own twisted.plugins package finds every such directory on sys.path).
    # A regular install puts the file in site-packages/twisted/plugins/.
    # package_dir {"": "."} makes an editable install (pip install -e .) put
    # this directory on sys.path with a .pth file; without it, setuptools
    # installs an import hook that maps gearman_tw but never twisted/plugins,
    # and twistd says "Unknown command: gearman" outside the checkout.
    package_dir={"": "."},
    packages=find_packages(here, include=["gearman_tw", "gearman_tw.*"]) + ["twisted.plugins"],
    package_data={
        "gearman_tw": ["py.typed"],
        "gearman_tw.server": ["monitor.html", "*.json"],
    },
    entry_points={"console_scripts": ["gearman-tw = gearman_tw.cli:run"]},
    # Everything the documented options need, so that each works after a
    # plain install.  (txredisapi requires twisted[tls] anyway.)
    install_requires=[
        "twisted>=22.10",
        "zope.interface>=5",
        "txredisapi>=1.6",  # --queue redis:// (RedisFactory.startConnecting)
        "psycopg[binary]>=3.1",  # --queue postgresql://
        "PyMySQL>=1.1",  # --queue mysql://
        "prometheus_client>=0.17",  # /metrics
        "pyOpenSSL>=22",  # --ssl, tls: client descriptions
        "service_identity>=21",
    ],
    extras_require={
        # Once optional, now installed with the package; kept so that
        # '.[tls]', '.[redis]' and '.[http]' still install.
        "tls": [],
        "redis": [],
        "http": [],
        "test": ["hypothesis>=6", "treq>=22.1"],
        "docs": ["sphinx>=6", "pydoctor>=25.10"],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Distributed Computing",
    ],
)
