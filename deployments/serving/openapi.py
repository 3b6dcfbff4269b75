"""OpenAPI 3.1 for the serving plane: MLflow's scoring protocol, `/feedback`, and the
Open Inference Protocol (KServe V2 REST). A document of its own beside `/api/v1/`'s
(the serving plane has its own base path per endpoint and its own tokens), served at
`/api/v1/serving/schema/` with Swagger UI at `/api/v1/serving/docs/`."""

from typing import Any

from deployments.serving.oip import DTYPES
from deployments.serving.protocol import SUPPORTED_FORMATS

ERROR_MLFLOW = {"$ref": "#/components/schemas/MlflowError"}
ERROR_V2 = {"$ref": "#/components/schemas/V2Error"}
COLUMNS_EXAMPLE = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def _json(schema: dict, description: str, example: Any = None) -> dict:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


def _errors(error: dict, *codes: int) -> dict[str, dict]:
    texts = {
        400: "Invalid input: malformed body, or data that does not match the model's signature.",
        401: "A non-public endpoint without a valid `Authorization: Bearer <endpoint token>`.",
        404: "No such endpoint (or model name / version, V2).",
        405: "Wrong method.",
        413: "The body is larger than the endpoint's limit.",
        415: "Not JSON or CSV in UTF-8.",
        500: "The model raised while predicting.",
        503: "The endpoint has no ready revision yet.",
    }
    return {str(code): _json(error, texts[code]) for code in codes}


def _tensor_schema(*, with_data: bool) -> dict:
    properties: dict[str, Any] = {
        "name": {"type": "string"},
        "datatype": {"type": "string", "enum": list(DTYPES)},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
        "parameters": {"$ref": "#/components/schemas/V2Parameters"},
    }
    if with_data:
        properties["data"] = {
            "description": "The tensor's elements in row-major order, flat or nested; absent when "
            "`parameters.binary_data_size` says they follow the JSON header as binary data.",
            "type": "array",
        }
    return {"type": "object", "required": ["name", "datatype", "shape"], "properties": properties}


def serving_schema() -> dict[str, Any]:
    protect = [{"endpointToken": []}, {}]
    v2_model = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The endpoint's slug (the model an endpoint serves is named after it).",
    }
    v2_version = {
        "name": "model_version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "A served revision's id (champion or challenger); pins the request to it.",
    }
    infer_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/V2InferenceRequest"},
                "example": {
                    "id": "req-1",
                    "parameters": {"content_type": "pd"},
                    "inputs": [
                        {"name": c, "datatype": "FP64", "shape": [1], "data": [v]}
                        for c, v in zip(COLUMNS_EXAMPLE, [5.1, 3.5, 1.4, 0.2], strict=True)
                    ],
                },
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "Binary tensor extension: the JSON request (its length in the "
                "`Inference-Header-Content-Length` header) followed by the inputs' bytes.",
            },
        },
    }
    infer_ok = {
        "description": "The outputs, with the request's id (the key for `/feedback`).",
        "headers": {"x-request-id": {"schema": {"type": "string"}}},
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/V2InferenceResponse"},
                "example": {
                    "model_name": "iris",
                    "model_version": "3",
                    "id": "req-1",
                    "outputs": [{"name": "predict", "datatype": "INT64", "shape": [1], "data": [0]}],
                },
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "When binary outputs were asked for: the JSON response, then the outputs' bytes.",
            },
        },
    }

    def infer_op(op_id: str, params: list) -> dict:
        return {
            "post": {
                "operationId": op_id,
                "tags": ["Open Inference Protocol"],
                "summary": "Run the model on named input tensors",
                "parameters": params,
                "security": protect,
                "requestBody": infer_body,
                "responses": {"200": infer_ok, **_errors(ERROR_V2, 400, 401, 404, 413, 500, 503)},
            }
        }

    def metadata_op(op_id: str, params: list) -> dict:
        return {
            "get": {
                "operationId": op_id,
                "tags": ["Open Inference Protocol"],
                "summary": "Model metadata: the signature's inputs and outputs as tensors",
                "parameters": params,
                "security": protect,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/V2ModelMetadata"}, "The model's metadata."),
                    **_errors(ERROR_V2, 401, 404, 503),
                },
            }
        }

    def ready_op(op_id: str, params: list) -> dict:
        return {
            "get": {
                "operationId": op_id,
                "tags": ["Open Inference Protocol"],
                "summary": "Whether the model (version) can answer",
                "parameters": params,
                "security": protect,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/V2Ready"}, "Ready."),
                    "503": _json({"$ref": "#/components/schemas/V2Ready"}, "Not ready."),
                    **_errors(ERROR_V2, 401, 404),
                },
            }
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ML Platform serving API",
            "version": "1.0.0",
            "description": (
                "The scoring protocols of a deployed endpoint, served under `/serve/<endpoint>/`: MLflow's "
                "(`/invocations`, as `mlflow models serve`) and the Open Inference Protocol (KServe V2 REST, "
                "as MLServer, KServe and Triton), plus `/feedback` for ground truth. Both share auth, "
                "micro-batching, the prediction log and canary/shadow routing. The management API is at "
                "[/api/v1/docs/](/api/v1/docs/)."
            ),
        },
        "servers": [
            {
                "url": "/serve/{endpoint}",
                "variables": {"endpoint": {"default": "iris", "description": "The endpoint's slug."}},
            }
        ],
        "tags": [
            {"name": "MLflow scoring protocol"},
            {"name": "Open Inference Protocol"},
            {"name": "Feedback"},
        ],
        "paths": {
            "/invocations": {
                "post": {
                    "operationId": "mlflow_invocations",
                    "tags": ["MLflow scoring protocol"],
                    "summary": "Score rows (MLflow's scoring protocol)",
                    "security": protect,
                    "parameters": [
                        {
                            "name": "x-request-id",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                            "description": "Your id for this request (echoed); one is made up otherwise.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/MlflowRequest"},
                                "example": {
                                    "dataframe_split": {"columns": COLUMNS_EXAMPLE, "data": [[5.1, 3.5, 1.4, 0.2]]}
                                },
                            },
                            "text/csv": {
                                "schema": {"type": "string"},
                                "description": "A DataFrame with a header row (`DataFrame.to_csv(index=False)`).",
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            **_json(
                                {"$ref": "#/components/schemas/MlflowPredictions"},
                                "The predictions.",
                                {"predictions": [0]},
                            ),
                            "headers": {"x-request-id": {"schema": {"type": "string"}}},
                        },
                        **_errors(ERROR_MLFLOW, 400, 401, 404, 413, 415, 500, 503),
                    },
                }
            },
            "/feedback": {
                "post": {
                    "operationId": "feedback",
                    "tags": ["Feedback"],
                    "summary": "Ground truth for earlier predictions, by their request id",
                    "security": protect,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/FeedbackItem"},
                                        {
                                            "type": "object",
                                            "required": ["feedback"],
                                            "properties": {
                                                "feedback": {
                                                    "type": "array",
                                                    "minItems": 1,
                                                    "maxItems": 1000,
                                                    "items": {"$ref": "#/components/schemas/FeedbackItem"},
                                                }
                                            },
                                        },
                                    ]
                                },
                                "example": {"request_id": "req-1", "actual": [0]},
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            {
                                "type": "object",
                                "required": ["accepted"],
                                "properties": {"accepted": {"type": "integer"}},
                            },
                            "Accepted (joined to the predictions when the log is flushed).",
                        ),
                        **_errors(ERROR_MLFLOW, 400, 401, 404, 413),
                    },
                }
            },
            "/ping": {
                "get": {
                    "operationId": "mlflow_ping",
                    "tags": ["MLflow scoring protocol"],
                    "summary": "200 when a revision is ready (also `/health`)",
                    "security": [{}],
                    "responses": {"200": {"description": "Ready."}, "503": {"description": "Not ready."}},
                }
            },
            "/v2": {
                "get": {
                    "operationId": "v2_server_metadata",
                    "tags": ["Open Inference Protocol"],
                    "summary": "Server metadata",
                    "security": [{}],
                    "responses": {"200": _json({"$ref": "#/components/schemas/V2ServerMetadata"}, "The server.")},
                }
            },
            "/v2/health/live": {
                "get": {
                    "operationId": "v2_live",
                    "tags": ["Open Inference Protocol"],
                    "summary": "Liveness",
                    "security": [{}],
                    "responses": {"200": _json({"type": "object"}, "Live.")},
                }
            },
            "/v2/health/ready": {
                "get": {
                    "operationId": "v2_ready",
                    "tags": ["Open Inference Protocol"],
                    "summary": "Readiness (a revision is loaded)",
                    "security": [{}],
                    "responses": {
                        "200": _json({"type": "object"}, "Ready."),
                        "503": _json({"type": "object"}, "Not ready."),
                    },
                }
            },
            "/v2/models/{model_name}": metadata_op("v2_model_metadata", [v2_model]),
            "/v2/models/{model_name}/versions/{model_version}": metadata_op(
                "v2_model_version_metadata", [v2_model, v2_version]
            ),
            "/v2/models/{model_name}/ready": ready_op("v2_model_ready", [v2_model]),
            "/v2/models/{model_name}/versions/{model_version}/ready": ready_op(
                "v2_model_version_ready", [v2_model, v2_version]
            ),
            "/v2/models/{model_name}/infer": infer_op("v2_infer", [v2_model]),
            "/v2/models/{model_name}/versions/{model_version}/infer": infer_op(
                "v2_version_infer", [v2_model, v2_version]
            ),
        },
        "components": {
            "securitySchemes": {
                "endpointToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An endpoint token (the endpoint's page or API); public endpoints need none.",
                }
            },
            "schemas": {
                "MlflowRequest": {
                    "type": "object",
                    "description": f"Exactly one of {sorted(SUPPORTED_FORMATS)}, optionally with `params`.",
                    "properties": {
                        "dataframe_split": {
                            "type": "object",
                            "required": ["data"],
                            "properties": {
                                "columns": {"type": "array", "items": {"type": "string"}},
                                "data": {"type": "array", "items": {"type": "array"}},
                                "index": {"type": "array"},
                            },
                        },
                        "dataframe_records": {"type": "array", "items": {"type": "object"}},
                        "instances": {"type": ["array", "object"]},
                        "inputs": {"type": ["array", "object"]},
                        "params": {"type": "object"},
                    },
                    "minProperties": 1,
                },
                "MlflowPredictions": {
                    "type": "object",
                    "required": ["predictions"],
                    "properties": {"predictions": {"description": "One prediction per row (or a list of records)."}},
                },
                "MlflowError": {
                    "type": "object",
                    "required": ["error_code", "message"],
                    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
                },
                "FeedbackItem": {
                    "type": "object",
                    "required": ["request_id", "actual"],
                    "properties": {
                        "request_id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                        "actual": {"description": "The true value(s), any JSON."},
                    },
                },
                "V2Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "V2Parameters": {
                    "type": "object",
                    "description": "`content_type: pd` reads inputs as DataFrame columns (MLServer's pandas codec); "
                    "`binary_data_size` / `binary_data` / `binary_data_output`: the binary tensor extension.",
                    "properties": {
                        "content_type": {"type": "string"},
                        "binary_data_size": {"type": "integer"},
                        "binary_data": {"type": "boolean"},
                        "binary_data_output": {"type": "boolean"},
                    },
                },
                "V2Tensor": _tensor_schema(with_data=True),
                "V2TensorMetadata": _tensor_schema(with_data=False),
                "V2InferenceRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"$ref": "#/components/schemas/V2Parameters"},
                        "inputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/V2Tensor"}},
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "parameters": {"$ref": "#/components/schemas/V2Parameters"},
                                },
                            },
                        },
                    },
                },
                "V2InferenceResponse": {
                    "type": "object",
                    "required": ["model_name", "outputs"],
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
                        "parameters": {"$ref": "#/components/schemas/V2Parameters"},
                        "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2Tensor"}},
                    },
                },
                "V2ServerMetadata": {
                    "type": "object",
                    "required": ["name", "version", "extensions"],
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "extensions": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "V2ModelMetadata": {
                    "type": "object",
                    "required": ["name", "platform", "inputs", "outputs"],
                    "properties": {
                        "name": {"type": "string"},
                        "versions": {"type": "array", "items": {"type": "string"}},
                        "platform": {"type": "string"},
                        "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2TensorMetadata"}},
                        "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/V2TensorMetadata"}},
                        "parameters": {
                            "type": "object",
                            "description": "`version`: the revision described; `loader`: the code path serving it.",
                        },
                    },
                },
                "V2Ready": {
                    "type": "object",
                    "required": ["ready"],
                    "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
                },
            },
        },
    }
