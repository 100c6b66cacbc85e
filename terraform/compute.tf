# One Auto Scaling group per plan and region. The us-west-2 groups run at the
# plan's active capacity; the us-east-1 groups wait at the standby capacity
# (0/0/max) until drctl scales them up during a failover or drill.
#
# drctl, not Terraform, owns the size of the standby groups: ignore_changes on
# min/max/desired keeps a `terraform apply` run during a failover (or before a
# drill has cleaned up) from scaling the now-active region back to zero.

locals {
  workloads = {
    "payments-api" = {
      plan          = "payments"
      instance_type = var.payments_api_instance_type
    }
    "ledger-workers" = {
      plan          = "ledger"
      instance_type = var.ledger_workers_instance_type
    }
    "archive-api" = {
      plan          = "archive"
      instance_type = var.ledger_workers_instance_type
    }
  }
}

# The AMI is resolved once per region at apply time, so both regions launch
# the same image until the next apply.
data "aws_ssm_parameter" "ami_usw2" {
  name = var.ami_ssm_parameter
}

data "aws_ssm_parameter" "ami_use1" {
  provider = aws.use1

  name = var.ami_ssm_parameter
}

resource "aws_launch_template" "usw2" {
  for_each = local.workloads

  name_prefix            = "${each.key}-usw2-"
  image_id               = nonsensitive(data.aws_ssm_parameter.ami_usw2.value)
  instance_type          = each.value.instance_type
  vpc_security_group_ids = [aws_security_group.app_usw2.id]

  metadata_options {
    http_tokens = "required"
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      "drctl:plan" = each.value.plan
    }
  }

  tags = {
    "drctl:plan" = each.value.plan
  }
}

resource "aws_launch_template" "use1" {
  provider = aws.use1
  for_each = local.workloads

  name_prefix            = "${each.key}-use1-"
  image_id               = nonsensitive(data.aws_ssm_parameter.ami_use1.value)
  instance_type          = each.value.instance_type
  vpc_security_group_ids = [aws_security_group.app_use1.id]

  metadata_options {
    http_tokens = "required"
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      "drctl:plan" = each.value.plan
    }
  }

  tags = {
    "drctl:plan" = each.value.plan
  }
}

# --- Plan "payments" ----------------------------------------------------------

resource "aws_autoscaling_group" "payments_api_usw2" {
  name                = "payments-api-usw2"
  min_size            = 2
  desired_capacity    = 4
  max_size            = 8
  vpc_zone_identifier = var.subnet_ids_usw2

  launch_template {
    id      = aws_launch_template.usw2["payments-api"].id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = "payments"
    propagate_at_launch = true
  }
}

resource "aws_autoscaling_group" "payments_api_use1" {
  provider = aws.use1

  name                = "payments-api-use1"
  min_size            = 0
  desired_capacity    = 0
  max_size            = 8
  vpc_zone_identifier = var.subnet_ids_use1

  launch_template {
    id      = aws_launch_template.use1["payments-api"].id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = "payments"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [min_size, max_size, desired_capacity]
  }
}

# --- Plan "ledger" ------------------------------------------------------------

resource "aws_autoscaling_group" "ledger_workers_usw2" {
  name                = "ledger-workers-usw2"
  min_size            = 1
  desired_capacity    = 2
  max_size            = 4
  vpc_zone_identifier = var.subnet_ids_usw2

  launch_template {
    id      = aws_launch_template.usw2["ledger-workers"].id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = "ledger"
    propagate_at_launch = true
  }
}

resource "aws_autoscaling_group" "ledger_workers_use1" {
  provider = aws.use1

  name                = "ledger-workers-use1"
  min_size            = 0
  desired_capacity    = 0
  max_size            = 4
  vpc_zone_identifier = var.subnet_ids_use1

  launch_template {
    id      = aws_launch_template.use1["ledger-workers"].id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = "ledger"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [min_size, max_size, desired_capacity]
  }
}

# --- Plan "archive" -----------------------------------------------------------

resource "aws_autoscaling_group" "archive_api_usw2" {
  name                = "archive-api-usw2"
  min_size            = 1
  desired_capacity    = 2
  max_size            = 4
  vpc_zone_identifier = var.subnet_ids_usw2

  launch_template {
    id      = aws_launch_template.usw2["archive-api"].id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = "archive"
    propagate_at_launch = true
  }
}

resource "aws_autoscaling_group" "archive_api_use1" {
  provider = aws.use1

  name                = "archive-api-use1"
  min_size            = 0
  desired_capacity    = 0
  max_size            = 4
  vpc_zone_identifier = var.subnet_ids_use1

  launch_template {
    id      = aws_launch_template.use1["archive-api"].id
    version = "$Latest"
  }

  tag {
    key                 = "drctl:plan"
    value               = "archive"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [min_size, max_size, desired_capacity]
  }
}
