# Plan "orders" (plans/orders.toml), its workers on ECS Fargate
# (`[[ecs_service]]`): a cluster per region, each running the service
# `orders-workers` from its region's task definition. The service runs 4
# tasks in us-west-2, where orders serves, and 1 in us-east-1 and
# eu-west-1, where it stands by; drctl sizes a service by its desired count
# alone (UpdateService, no new deployment) during a failover or a drill, and
# marks a service a drill raised with `drctl:drill-*` tags (terraform/iam.tf,
# "EcsServices", "EcsDrillTags").
#
# drctl, not Terraform, owns the standby services' desired count:
# ignore_changes keeps a `terraform apply` run during a failover (or before
# a drill has cleaned up) from scaling the now-active region back to one
# task, as for the standby Auto Scaling groups (compute.tf).

locals {
  orders_workers_container = [
    {
      name      = "worker"
      image     = var.orders_workers_image
      essential = true
    },
  ]
}

# --- us-west-2 (home) ---------------------------------------------------------

resource "aws_ecs_cluster" "orders_usw2" {
  name = "orders-ecs-usw2"

  tags = {
    "drctl:plan" = "orders"
  }
}

resource "aws_ecs_task_definition" "orders_workers_usw2" {
  family                   = "orders-workers"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.orders_workers_cpu
  memory                   = var.orders_workers_memory
  container_definitions    = jsonencode(local.orders_workers_container)
  execution_role_arn       = var.orders_workers_execution_role_arn

  tags = {
    "drctl:plan" = "orders"
  }
}

resource "aws_ecs_service" "orders_workers_usw2" {
  name            = "orders-workers"
  cluster         = aws_ecs_cluster.orders_usw2.id
  task_definition = aws_ecs_task_definition.orders_workers_usw2.arn
  launch_type     = "FARGATE"
  desired_count   = 4

  network_configuration {
    subnets         = var.subnet_ids_usw2
    security_groups = [aws_security_group.app_usw2.id]
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = {
    "drctl:plan" = "orders"
  }
}

# --- us-east-1 (standby) ------------------------------------------------------

resource "aws_ecs_cluster" "orders_use1" {
  provider = aws.use1

  name = "orders-ecs-use1"

  tags = {
    "drctl:plan" = "orders"
  }
}

resource "aws_ecs_task_definition" "orders_workers_use1" {
  provider = aws.use1

  family                   = "orders-workers"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.orders_workers_cpu
  memory                   = var.orders_workers_memory
  container_definitions    = jsonencode(local.orders_workers_container)
  execution_role_arn       = var.orders_workers_execution_role_arn

  tags = {
    "drctl:plan" = "orders"
  }
}

resource "aws_ecs_service" "orders_workers_use1" {
  provider = aws.use1

  name            = "orders-workers"
  cluster         = aws_ecs_cluster.orders_use1.id
  task_definition = aws_ecs_task_definition.orders_workers_use1.arn
  launch_type     = "FARGATE"
  desired_count   = 1

  network_configuration {
    subnets         = var.subnet_ids_use1
    security_groups = [aws_security_group.app_use1.id]
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = {
    "drctl:plan" = "orders"
  }

  lifecycle {
    ignore_changes = [desired_count]
  }
}

# --- eu-west-1 (standby) ------------------------------------------------------

resource "aws_ecs_cluster" "orders_euw1" {
  provider = aws.euw1

  name = "orders-ecs-euw1"

  tags = {
    "drctl:plan" = "orders"
  }
}

resource "aws_ecs_task_definition" "orders_workers_euw1" {
  provider = aws.euw1

  family                   = "orders-workers"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.orders_workers_cpu
  memory                   = var.orders_workers_memory
  container_definitions    = jsonencode(local.orders_workers_container)
  execution_role_arn       = var.orders_workers_execution_role_arn

  tags = {
    "drctl:plan" = "orders"
  }
}

resource "aws_ecs_service" "orders_workers_euw1" {
  provider = aws.euw1

  name            = "orders-workers"
  cluster         = aws_ecs_cluster.orders_euw1.id
  task_definition = aws_ecs_task_definition.orders_workers_euw1.arn
  launch_type     = "FARGATE"
  desired_count   = 1

  network_configuration {
    subnets         = var.subnet_ids_euw1
    security_groups = [aws_security_group.app_euw1.id]
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = {
    "drctl:plan" = "orders"
  }

  lifecycle {
    ignore_changes = [desired_count]
  }
}
