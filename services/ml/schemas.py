"""Request/response bodies of the ML service.

`/vectors` follows Weaviate's text2vec-transformers client: it posts its whole request
struct (`text`, `config` and zero-valued `dims`/`vector`/`error` fields), reads `vector` and
`dims` back, and on failure reads `error`. The reference containers answer `dim`, so both
spellings are returned. Newer clients may post `texts` (a list) and read `vectors`.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Text = Annotated[str, Field(min_length=1, description="Text to embed (non-empty).")]


class VectorInputConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    pooling_strategy: str | None = Field(
        default=None, description="Only masked_mean/mean is served."
    )
    task_type: str | None = Field(
        default=None, description="query or passage; symmetric model: unused."
    )
    dimensions: int | None = Field(
        default=None, description="Must equal the model dimension if set."
    )


class VectorsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Weaviate's dims/vector/error placeholders

    text: Text | None = None
    texts: list[Text] | None = Field(default=None, min_length=1)
    config: VectorInputConfig | None = None

    @model_validator(mode="after")
    def one_input(self) -> Self:
        if (self.text is None) == (self.texts is None):
            raise ValueError("send exactly one of 'text' (a string) or 'texts' (a list)")
        return self


class VectorResponse(BaseModel):
    text: str
    vector: list[float]
    dim: int
    dims: int


class VectorBatchResponse(BaseModel):
    vectors: list[list[float]]
    dim: int
    dims: int


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[Text] = Field(min_length=1, description="Texts to embed, in order.")


class EmbeddingsResponse(BaseModel):
    model: str
    dim: int
    embeddings: list[list[float]] = Field(description="Unit-length vectors, one per text.")


class TextPair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: Text
    b: Text


class SimilarityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pairs: list[TextPair] = Field(min_length=1)


class SimilarityResponse(BaseModel):
    model: str
    scores: list[float] = Field(description="Cosine similarity per pair, in [-1, 1].")


class ErrorResponse(BaseModel):
    error: str = Field(description="What was wrong, naming the field or limit.")
    detail: list[dict[str, Any]] | None = Field(default=None, description="Validation errors.")
    correlation_id: str | None = None


# OpenAPI documentation of the error shapes every inference route may return.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Body too large"},
    422: {"model": ErrorResponse, "description": "Invalid input or over a limit"},
    503: {"model": ErrorResponse, "description": "Model not loaded"},
}
