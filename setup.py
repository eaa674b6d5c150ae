"""Install myapp: `pip install -e '.[dev,postgres]'`."""

from setuptools import find_packages, setup

setup(
    name="myapp",
    version="0.1.0",
    description="A pipeline scheduler daemon for ML and data pipelines on Kubernetes or local processes",
    python_requires=">=3.11",
    packages=find_packages(include=["myapp", "myapp.*"]),
    package_data={"myapp": ["py.typed", "db/migrations/*.py", "db/migrations/*.mako",
                            "db/migrations/versions/*.py", "web/static/**/*", "web/templates/**/*"]},
    include_package_data=True,
    install_requires=[
        "Flask>=3.1,<3.2",
        "Flask-AppBuilder>=5.3,<5.4",
        "Flask-SQLAlchemy>=3.1,<3.2",
        # Sign-in rate limit (FAB's AUTH_RATE_LIMITED) and security headers (docs/security.md)
        "Flask-Limiter>=3.5,<5",
        "flask-talisman>=1.1,<1.2",
        # Secrets at rest: Fernet (docs/security.md §5)
        "cryptography>=42",
        # FAB 5.3's security API schemas break on marshmallow 4 (KeyError 'permission_id').
        "marshmallow>=3.18,<4",
        "marshmallow-sqlalchemy>=0.29,<1.5",
        "SQLAlchemy>=2.0,<2.2",
        "alembic>=1.13,<2",
        "celery[redis]>=5.5,<5.8",
        "redis>=5,<9",
        "Jinja2>=3.1,<4",
        "PyYAML>=6,<7",
        "click>=8.1,<9",
        "gunicorn>=23,<28",
        "kubernetes==37.0.1",
        "cron-descriptor>=2.2,<3",  # a schedule in words on the pipeline list (as Airflow's UI)
    ],
    extras_require={
        "postgres": ["psycopg[binary]>=3.2,<3.4"],
        "mysql": ["PyMySQL>=1.1,<1.3"],
        # An artifact repository in S3 or MinIO (artifact_repository: s3://bucket/prefix, docs/artifacts.md)
        "s3": ["s3fs>=2024.6"],
        "dev": [
            "pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100", "mypy>=1.10", "ruff>=0.5",
            "types-PyYAML", "playwright==1.65.2", "psycopg[binary]>=3.2,<3.4", "schemathesis>=4.32,<5",
            "PyMySQL>=1.1,<1.3",   # the claim/finish contract suite on MariaDB
            "s3fs>=2024.6", "moto[server]>=5.0,<6",   # artifacts against an S3-protocol server on loopback
        ],
    },
    entry_points={"console_scripts": ["myapp = myapp.cli:main"]},
)
