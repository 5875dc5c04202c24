use agenthost::db;
use agenthost_tests::fresh_database;
use sqlx::PgPool;

#[tokio::test]
async fn the_embedded_server_has_every_extension_we_need() {
    let pool = PgPool::connect(&fresh_database().await).await.unwrap();
    db::check_server(&pool).await.unwrap();
    for extension in db::REQUIRED_EXTENSIONS {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE EXTENSION {extension}")))
            .execute(&pool)
            .await
            .unwrap_or_else(|err| panic!("CREATE EXTENSION {extension}: {err}"));
    }
    let distance: f64 = sqlx::query_scalar("SELECT '[1,0]'::vector <=> '[0,1]'::vector")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        (distance - 1.0).abs() < 1e-9,
        "cosine distance of orthogonal vectors"
    );
}

#[tokio::test]
async fn missing_extensions_are_reported_by_name() {
    let pool = PgPool::connect(&fresh_database().await).await.unwrap();
    let missing = db::missing_extensions(&pool, &["no_such_ext", "vector", "also_missing"])
        .await
        .unwrap();
    assert_eq!(missing, ["no_such_ext", "also_missing"]);
}

#[tokio::test]
async fn migrations_are_idempotent_and_readiness_sees_them() {
    let pool = PgPool::connect(&fresh_database().await).await.unwrap();
    assert!(
        db::migrations_applied(&pool).await.is_err(),
        "no migration table yet"
    );
    db::migrate(&pool).await.unwrap();
    db::migrate(&pool).await.unwrap();
    assert!(db::migrations_applied(&pool).await.unwrap());
}
