"""imagespec: declarative GitOps pipeline for xCAT HPC node images."""

__version__ = "0.1.0"
