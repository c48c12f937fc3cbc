"""Text generators behind one protocol: OpenAI-compatible servers, local transformers models, and test doubles."""
