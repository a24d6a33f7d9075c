"""The data path: Tiled catalog server and client, document writers, image read-back."""
