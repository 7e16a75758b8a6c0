"""The ML inference service: a Weaviate text2vec-transformers compatible vectorizer.

Model files come from local disk only. The hub libraries read these variables when they are
first imported, so they are forced here, before anything in this package imports them.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
