"""hw3lib: VAE, DCGAN, DANN and Generate-To-Adapt (DLCV HW3), trained and reported from notebooks."""
__version__ = "0.2.0"
