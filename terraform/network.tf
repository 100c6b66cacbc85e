# Security groups and DB subnet groups, one set per region. Shared by both
# plans, so they carry no drctl:plan tag.

# --- us-west-2 ----------------------------------------------------------------

resource "aws_security_group" "app_usw2" {
  name        = "drctl-app-usw2"
  description = "Payments API and ledger worker instances"
  vpc_id      = var.vpc_id_usw2
}

resource "aws_vpc_security_group_egress_rule" "app_usw2_all" {
  security_group_id = aws_security_group.app_usw2.id
  description       = "Outbound traffic of the applications"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "db_usw2" {
  name        = "drctl-db-usw2"
  description = "PostgreSQL primaries"
  vpc_id      = var.vpc_id_usw2
}

resource "aws_vpc_security_group_ingress_rule" "db_usw2_from_app" {
  security_group_id            = aws_security_group.db_usw2.id
  description                  = "PostgreSQL from the application instances"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.app_usw2.id
}

resource "aws_db_subnet_group" "usw2" {
  name       = "drctl-db-usw2"
  subnet_ids = var.subnet_ids_usw2
}

# --- us-east-1 ----------------------------------------------------------------

resource "aws_security_group" "app_use1" {
  provider = aws.use1

  name        = "drctl-app-use1"
  description = "Payments API and ledger worker instances"
  vpc_id      = var.vpc_id_use1
}

resource "aws_vpc_security_group_egress_rule" "app_use1_all" {
  provider = aws.use1

  security_group_id = aws_security_group.app_use1.id
  description       = "Outbound traffic of the applications"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "db_use1" {
  provider = aws.use1

  name        = "drctl-db-use1"
  description = "PostgreSQL read replicas (primaries after a failover)"
  vpc_id      = var.vpc_id_use1
}

resource "aws_vpc_security_group_ingress_rule" "db_use1_from_app" {
  provider = aws.use1

  security_group_id            = aws_security_group.db_use1.id
  description                  = "PostgreSQL from the application instances"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.app_use1.id
}

resource "aws_db_subnet_group" "use1" {
  provider = aws.use1

  name       = "drctl-db-use1"
  subnet_ids = var.subnet_ids_use1
}
