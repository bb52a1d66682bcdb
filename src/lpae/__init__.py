"""lpae: autoencoders under any L_p reconstruction loss or decoder likelihood, and the evidence
for choosing between them."""

__version__ = "0.1.0"

__all__ = ["__version__"]
