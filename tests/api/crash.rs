//! PostgreSQL killed under write load: the service keeps running, answers UNAVAILABLE and
//! NOT_SERVING during the outage, recovers by itself, and loses or duplicates nothing it
//! acknowledged. Runs its own cluster (fsync on), since it kills the database.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use cxmetrics::{commands, proto as pb, storage::Store};
use sqlx::postgres::PgPoolOptions;
use tonic::{Code, transport::Channel};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{
    cluster::Cluster,
    faults::{feedback_at, wait_for_status},
    helpers::*,
};

/// How each client writes: the RPC, and how many records per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    RecordSurveyResponse,
    BatchRecordSurveyResponses,
    UpsertInteraction,
    ImportRecords,
}

impl Writer {
    const ALL: [Writer; 4] = [
        Writer::RecordSurveyResponse,
        Writer::BatchRecordSurveyResponses,
        Writer::UpsertInteraction,
        Writer::ImportRecords,
    ];

    fn records_per_call(self) -> usize {
        match self {
            Writer::RecordSurveyResponse | Writer::UpsertInteraction => 1,
            Writer::BatchRecordSurveyResponses => 5,
            Writer::ImportRecords => 10,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Writer::RecordSurveyResponse => "single",
            Writer::BatchRecordSurveyResponses => "batch",
            Writer::UpsertInteraction => "interaction",
            Writer::ImportRecords => "import",
        }
    }

    /// Writes the records `ids` in one call; the outcome of each, or the call's status.
    async fn write(self, client: &mut Feedback, ids: &[String]) -> Result<Vec<i32>, tonic::Status> {
        fn bounded<T>(message: T) -> tonic::Request<T> {
            let mut request = tonic::Request::new(message);
            request.set_timeout(Duration::from_secs(10));
            request
        }
        match self {
            Writer::RecordSurveyResponse => {
                let request = pb::RecordSurveyResponseRequest {
                    survey_response: Some(nps(&ids[0], "customer", 9)),
                };
                let reply = client.record_survey_response(bounded(request)).await?;
                Ok(vec![reply.into_inner().outcome])
            }
            Writer::BatchRecordSurveyResponses => {
                let request = pb::BatchRecordSurveyResponsesRequest {
                    survey_responses: ids.iter().map(|id| nps(id, "customer", 3)).collect(),
                };
                let reply = client
                    .batch_record_survey_responses(bounded(request))
                    .await?;
                Ok(reply.into_inner().outcomes)
            }
            Writer::UpsertInteraction => {
                let request = pb::UpsertInteractionRequest {
                    interaction: Some(interaction(&ids[0], "customer")),
                };
                let reply = client.upsert_interaction(bounded(request)).await?;
                Ok(vec![reply.into_inner().outcome])
            }
            Writer::ImportRecords => {
                let messages: Vec<_> = ids
                    .iter()
                    .map(|id| pb::ImportRecordsRequest {
                        record: Some(pb::import_records_request::Record::Customer(customer(id))),
                    })
                    .collect();
                let stream = bounded(tokio_stream::iter(messages));
                let reply = client.import_records(stream).await?.into_inner();
                assert_eq!((reply.rejected, reply.updated), (0, 0), "{reply:?}");
                // The import reports counts, not per-record outcomes.
                let mut outcomes = vec![pb::WriteOutcome::Created as i32; reply.created as usize];
                outcomes.resize(
                    outcomes.len() + reply.unchanged as usize,
                    pb::WriteOutcome::Unchanged as i32,
                );
                Ok(outcomes)
            }
        }
    }
}

/// What one client saw: the calls acknowledged and those that failed, by their ids.
#[derive(Debug, Default)]
struct Tally {
    acked: Vec<Vec<String>>,
    unacked: Vec<Vec<String>>,
    /// Calls acknowledged after the database came back.
    acked_after_restart: usize,
}

/// Writes with `writer` until `stop`, each call with fresh ids.
async fn keep_writing(
    writer: Writer,
    mut client: Feedback,
    stop: Arc<AtomicBool>,
    restarted: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
) -> Tally {
    let mut tally = Tally::default();
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        let ids: Vec<String> = (0..writer.records_per_call())
            .map(|_| {
                next += 1;
                format!("{}-{next}", writer.prefix())
            })
            .collect();
        match writer.write(&mut client, &ids).await {
            Ok(outcomes) => {
                // Every id is new, so every record of an acknowledged call was created.
                assert_eq!(
                    outcomes,
                    vec![pb::WriteOutcome::Created as i32; ids.len()],
                    "{writer:?}"
                );
                if restarted.load(Ordering::Relaxed) {
                    tally.acked_after_restart += 1;
                }
                tally.acked.push(ids);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{writer:?}: {status:?}");
                failures.fetch_add(1, Ordering::Relaxed);
                tally.unacked.push(ids);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    tally
}

/// Every status health reported while `watching` was set.
fn watch_health(channel: Channel, watching: Arc<AtomicBool>) -> Arc<Mutex<Vec<i32>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let status = crate::faults::health_at(&channel).await;
            if watching.load(Ordering::Relaxed) {
                record.lock().unwrap().push(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_write_load_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let cluster = Cluster::start().await;
    let key = {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&cluster.url())
            .await
            .expect("connect to the private cluster");
        let store = Store::from_pool(pool);
        store.migrate().await.expect("migrate");
        let key = commands::create_key(&store, TENANT, "read,write")
            .await
            .unwrap();
        store.pool().close().await;
        key
    };
    let (mut child, addr) = spawn_binary(
        &cluster.url(),
        &[("CXMETRICS_DB_ACQUIRE_TIMEOUT_SECS", "1")],
    )
    .await;
    let pid = child.id();
    let channel = connect(&addr, None).await.unwrap();
    wait_for_status(&channel, ServingStatus::Serving, Duration::from_secs(10)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = Writer::ALL
        .into_iter()
        .map(|writer| {
            tokio::spawn(keep_writing(
                writer,
                feedback_at(&channel, &key),
                stop.clone(),
                restarted.clone(),
                failures.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    cluster.kill().await;
    wait_for_status(&channel, ServingStatus::NotServing, Duration::from_secs(10)).await;
    let outage = Arc::new(AtomicBool::new(true));
    let during_outage = watch_health(channel.clone(), outage.clone());
    // The clients keep going against the dead database for a while.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    outage.store(false, Ordering::Relaxed);
    let failures_during_outage = failures.load(Ordering::Relaxed);

    cluster.restart().await;
    wait_for_status(&channel, ServingStatus::Serving, Duration::from_secs(20)).await;
    restarted.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tallies = Vec::new();
    for client in clients {
        tallies.push(client.await.expect("a client failed"));
    }

    let seen = during_outage.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|s| *s == ServingStatus::NotServing as i32),
        "health during the outage: {seen:?}"
    );
    assert!(
        failures_during_outage > 0,
        "no call failed while the database was down"
    );
    for (writer, tally) in Writer::ALL.iter().zip(&tallies) {
        assert!(
            tally.acked.len() > tally.acked_after_restart,
            "{writer:?} had no write acknowledged before the crash"
        );
        assert!(
            tally.acked_after_restart > 0,
            "{writer:?} did not recover after the restart"
        );
    }

    // Every acknowledged record survived the crash.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&cluster.url())
        .await
        .unwrap();
    let stored = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            let ids: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
            ids.into_iter().collect::<HashSet<_>>()
        }
    };
    let responses = stored("select response_id from survey_responses").await;
    let interactions = stored("select interaction_id from interactions").await;
    let customers = stored("select customer_id from customers").await;
    let table_of = |writer: Writer| match writer {
        Writer::RecordSurveyResponse | Writer::BatchRecordSurveyResponses => &responses,
        Writer::UpsertInteraction => &interactions,
        Writer::ImportRecords => &customers,
    };
    for (writer, tally) in Writer::ALL.into_iter().zip(&tallies) {
        for id in tally.acked.iter().flatten() {
            assert!(table_of(writer).contains(id), "acknowledged {id} was lost");
        }
    }

    // Retrying every unacknowledged call creates what is missing and duplicates nothing.
    let mut client = feedback_at(&channel, &key);
    for (writer, tally) in Writer::ALL.into_iter().zip(&tallies) {
        for ids in &tally.unacked {
            let outcomes = writer.write(&mut client, ids).await.expect("the retry");
            assert_eq!(outcomes.len(), ids.len());
            for outcome in outcomes {
                assert!(
                    outcome == pb::WriteOutcome::Created as i32
                        || outcome == pb::WriteOutcome::Unchanged as i32,
                    "{writer:?} retry of {ids:?}: {outcome}"
                );
            }
        }
    }
    let distinct = |writers: &[Writer]| {
        let ids: HashSet<&String> = writers
            .iter()
            .flat_map(|w| {
                let tally = &tallies[Writer::ALL.iter().position(|x| x == w).unwrap()];
                tally.acked.iter().chain(&tally.unacked).flatten()
            })
            .collect();
        ids.len() as i64
    };
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("select count(*) from survey_responses").await,
        distinct(&[
            Writer::RecordSurveyResponse,
            Writer::BatchRecordSurveyResponses
        ])
    );
    assert_eq!(
        count("select count(*) from interactions").await,
        distinct(&[Writer::UpsertInteraction])
    );
    assert_eq!(
        count("select count(*) from customers").await,
        distinct(&[Writer::ImportRecords])
    );

    // One process throughout.
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    assert_eq!(child.id(), pid);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let summary: Vec<_> = Writer::ALL
        .iter()
        .zip(&tallies)
        .map(|(w, t)| {
            format!(
                "{w:?}: {} acked, {} unacked",
                t.acked.len(),
                t.unacked.len()
            )
        })
        .collect();
    eprintln!("crash test took {took:?}; calls {summary:?}");
}
