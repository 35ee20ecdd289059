#!/bin/bash
# MACRL pretraining on several nodes with SLURM: one task per node, accelerate starts a process per GPU.
#   sbatch examples/slurm_multinode.sh
#SBATCH --job-name=macrl-pretrain
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=48:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail

GPUS_PER_NODE=8
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=29500
NUM_PROCESSES=$((SLURM_NNODES * GPUS_PER_NODE))

# Each node's task launches its 8 processes; SLURM_NODEID is the node rank. --dataloader_num_workers: as many as a
# node's cores allow; benchmarks/data_speed.py estimates that one H100-class GPU at ViT-B/16 would need ~130 at
# 224 px, so the CPU augmentation, not the GPU, sets the pace. The learning rate scales with all NUM_PROCESSES
# processes' batch.
srun bash -c "accelerate launch \
    --multi_gpu --num_machines $SLURM_NNODES --num_processes $NUM_PROCESSES --machine_rank \$SLURM_NODEID \
    --main_process_ip $MASTER_ADDR --main_process_port $MASTER_PORT --mixed_precision bf16 \
    run_pretraining.py --dataset_name ${DATASET:-imagenet-1k} --preset vit-base-patch16-224 \
    --per_device_train_batch_size 128 --num_train_epochs 400 --base_learning_rate 1.5e-4 \
    --dataloader_num_workers 8 --bf16 true --output_dir ${OUTPUT_DIR:-runs/macrl-vitb16} \
    --save_strategy steps --save_steps 2000 --logging_steps 50"
