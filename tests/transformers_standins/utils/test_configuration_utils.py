"""Stand-in: `config_common_kwargs`, one non-default value for each field every `PreTrainedConfig` has, for
`ConfigTester.check_config_arguments_init` (a config must keep each of them as given)."""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "is_encoder_decoder": True,
    "architectures": ["MacrlForPreTraining"],
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
}
