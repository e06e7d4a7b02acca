from models.base import Base
from models.boundaries import BoundarySet, Kecamatan, Kelurahan, KelurahanPiece

__all__ = ["Base", "BoundarySet", "Kecamatan", "Kelurahan", "KelurahanPiece"]
