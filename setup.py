from setuptools import find_packages, setup

with open("README.rst", encoding="utf-8") as readme:
    long_description = readme.read()

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
    ],
    extras_require={
        "s3": ["boto3>=1.35.50"],
        "test": [
            "boto3>=1.35.50",
            "moto[server]>=5.0.20",
            "pytest",
            "pytest-timeout",
            "webtest",
            "requests",
            "requests-toolbelt",
            "ruff",
        ],
    },
    entry_points={
        "paste.filter_factory": ["main = kinto_attachment_mw:filter_factory"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Pyramid",
    ],
)
