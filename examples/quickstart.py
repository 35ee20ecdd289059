"""Build a tiny MACRL model, run one training step on random images, save it and load it back."""

import torch

from macrl_hf import MacrlConfig, MacrlForPreTraining

config = MacrlConfig.from_preset("vit-tiny-patch4-32", num_hidden_layers=4, queue_size=256)
model = MacrlForPreTraining(config)
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1.5e-4)

strong, weak = torch.randn(16, 3, 32, 32), torch.randn(16, 3, 32, 32)
out = model(pixel_values=strong, momentum_pixel_values=weak)
out.loss.backward()
optimizer.step()
model.momentum_update(model.momentum_at(step=1, total_steps=100))
model.dequeue_and_enqueue(out.key_embeds)
print(f"loss {out.loss.item():.3f} = reconstruction {out.reconstruction_loss.item():.3f} + "
      f"contrastive {out.contrastive_loss.item():.3f}")

model.save_pretrained("runs/quickstart")
reloaded = MacrlForPreTraining.from_pretrained("runs/quickstart")
print("saved and reloaded:", int(reloaded.queue_ptr) == 16)
