#!/bin/sh
# The edge image's entrypoint, TF Serving's contract (tensorflow_serving/tools/docker/Dockerfile writes its
# tf_serving_entrypoint.sh the same way): the model is ${MODEL_BASE_PATH}/${MODEL_NAME}, gRPC on 8500, REST on
# 8501, and every argument of `docker run IMAGE ...` is passed on after these, so that
#   docker run IMAGE --model_config_file=/models/models.config --port=9000
# works as with tensorflow/serving: a flag given twice, the last one wins.
#
# One difference: all interfaces (--host=0.0.0.0), which tensorflow_model_server always binds and deepclf serve
# binds only when asked (its default outside a container is 127.0.0.1). A later --host=... still wins.
exec deepclf serve --port=8500 --rest_api_port=8501 --host=0.0.0.0 \
    --model_name="${MODEL_NAME:-model}" --model_base_path="${MODEL_BASE_PATH:-/models}/${MODEL_NAME:-model}" "$@"
