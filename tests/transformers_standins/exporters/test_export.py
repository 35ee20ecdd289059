"""Stand-in for transformers' export test mixin: each model class must go through `torch.export` and the exported
program must give the eager model's outputs on the tester's inputs."""

import copy

import torch


class ExportTesterMixin:
    test_torch_exportable = True

    def test_torch_export(self):
        if not self.test_torch_exportable:
            self.skipTest("test_torch_exportable is False")
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            with self.subTest(model_class.__name__):
                model = model_class(copy.deepcopy(config)).eval()
                inputs = self._prepare_for_class(inputs_dict, model_class)
                with torch.no_grad():
                    eager = model(**inputs)
                    program = torch.export.export(model, args=(), kwargs=inputs, strict=False)
                    exported = program.module()(**inputs)
                for name, value in eager.items():
                    if isinstance(value, torch.Tensor):
                        torch.testing.assert_close(exported[name], value, msg=f"{model_class.__name__}.{name}")
