"""One APIRouter per area: predict (POST /v1/predict), stream (WebSocket /v1/ws), meta (health, models, page)."""
