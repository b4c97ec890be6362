"""File formats: images (``images``) and video (``video``)."""
